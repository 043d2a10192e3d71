/**
 * One HTTP request to a backend and its response, on undici's dispatch API:
 * callbacks straight from the HTTP parser, no Readable streams in between.
 * A keep-alive request costs the miner about half the CPU of node:http's
 * client (measured here: ~23 vs ~45 us per small request), and a streamed
 * response hands over each socket read as it comes.
 *
 * The response body is pulled with `read()`. Bytes buffered beyond
 * HIGH_WATER_BYTES pause the socket until the reader catches up, so a slow
 * reader (a request out of tunnel credit) pushes back on the backend through
 * TCP. An abort cuts the request or the response at any point.
 */
import type { IncomingHttpHeaders } from "node:http";
import type { Dispatcher } from "undici";
import type { StopSignal } from "./request-stop.js";

/** Buffered response bytes above which the socket is paused. */
const HIGH_WATER_BYTES = 64 * 1024;

/** A network failure, before or during the response (not an abort). */
export class ExchangeError extends Error {
  constructor(cause: Error) {
    super(cause.message, { cause });
    this.name = "ExchangeError";
  }
}

/** What to send. */
export interface ExchangeRequest {
  readonly method: "GET" | "POST";
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body?: string;
}

export class HttpExchange implements Dispatcher.DispatchHandler {
  status = 0;
  headers: IncomingHttpHeaders = {};
  readonly #signal: StopSignal;
  #controller: Dispatcher.DispatchController | undefined;
  #head: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #ended = false;
  #error: unknown;
  #wake: (() => void) | undefined;
  /** Keep reading to the end but drop the bytes (a finished stream's tail). */
  #discard = false;
  readonly #onAbort = () => this.#controller?.abort(this.#signal.reason as Error);

  private constructor(signal: StopSignal) {
    this.#signal = signal;
  }

  /**
   * Sends `req` through `dispatcher`; resolves once the final response head
   * arrived. Rejects with the signal's reason when aborted, with an
   * ExchangeError on a network failure.
   */
  static async start(
    dispatcher: Dispatcher,
    req: ExchangeRequest,
    signal: StopSignal,
  ): Promise<HttpExchange> {
    if (signal.aborted) throw signal.reason;
    const x = new HttpExchange(signal);
    const head = new Promise<void>((resolve, reject) => {
      x.#head = { resolve, reject };
    });
    signal.addEventListener("abort", x.#onAbort, { once: true });
    dispatcher.dispatch({ method: req.method, path: req.path, headers: req.headers, body: req.body }, x);
    await head;
    return x;
  }

  /** The next piece of the body, or undefined at its end. Rejects like `start` on failure. */
  async read(): Promise<Buffer | undefined> {
    for (;;) {
      const next = this.#chunks.shift();
      if (next !== undefined) {
        this.#buffered -= next.length;
        if (this.#buffered < HIGH_WATER_BYTES && this.#controller?.paused === true) this.#controller.resume();
        return next;
      }
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return undefined;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }

  /**
   * Lets the response go. One read to its logical end (`reusable`) is read
   * on to its last byte so its connection returns to the pool, for at most
   * `drainMs`; any other is cut.
   */
  release(reusable: boolean, drainMs: number): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
    if (this.#ended || this.#error !== undefined) return;
    if (!reusable) {
      this.#controller?.abort(new Error("released before the end of the response"));
      return;
    }
    this.#discard = true;
    this.#chunks = [];
    this.#buffered = 0;
    if (this.#controller?.paused === true) this.#controller.resume();
    const timer = setTimeout(() => {
      if (!this.#ended) this.#controller?.abort(new Error("the response did not end after its last event"));
    }, drainMs);
    timer.unref();
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    // Aborted while queued for a connection.
    if (this.#signal.aborted) controller.abort(this.#signal.reason as Error);
  }

  onResponseStart(_c: Dispatcher.DispatchController, status: number, headers: IncomingHttpHeaders): void {
    if (status < 200) return; // 1xx: the final head follows.
    this.status = status;
    this.headers = headers;
    const head = this.#head;
    this.#head = undefined;
    head?.resolve();
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#discard) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered >= HIGH_WATER_BYTES) controller.pause();
    this.#poke();
  }

  onResponseEnd(): void {
    this.#ended = true;
    this.#signal.removeEventListener("abort", this.#onAbort);
    this.#poke();
  }

  onResponseError(_c: Dispatcher.DispatchController, error: Error): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
    const err = this.#signal.aborted ? this.#signal.reason : new ExchangeError(error);
    const head = this.#head;
    if (head !== undefined) {
      this.#head = undefined;
      head.reject(err);
      return;
    }
    this.#error = err;
    this.#poke();
  }

  #poke(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }
}
