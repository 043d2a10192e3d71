/**
 * Serves one InferenceRequest: pulls events from the backend, spends the
 * request's flow-control credit on each chunk (and stops pulling while out
 * of credit or while the tunnel's send queue is congested), then ends with
 * exactly one terminal frame — Usage on success, RequestError otherwise —
 * unless the tunnel itself went away.
 *
 * Usage is the backend's own when it reported one, otherwise counted with
 * the BPE tokenizer over what was actually relayed.
 */
import { chunkPayloadBytes } from "../common/chunk-credit.js";
import { boundedFingerprint } from "../common/chunk-fingerprint.js";
import { type Clock, systemClock, type Timer } from "../common/clock.js";
import type { Logger } from "../common/logger.js";
import type { InferenceRequest, RequestError, ResponseChunk, Usage } from "../gen/tensorclaw/v1/tunnel.js";
import { RequestErrorCode } from "../gen/tensorclaw/v1/tunnel.js";
import type { RequestObserver, RequestOutcome } from "./adaptive-concurrency.js";
import { type Backend, type BackendEvent, BackendFailure } from "./backend/backend.js";
import { RequestStop } from "./backend/request-stop.js";
import { CompletionTokenCounter, countPromptTokens, countTextTokens } from "./backend/token-counter.js";
import { relayEmbeddings } from "./embedding-relay.js";
import { CreditWindow } from "./tunnel/credit-window.js";

/** Longest trace id logged (the router's are 32 characters; a longer one is not worth a long log line). */
const MAX_TRACE_ID_CHARS = 64;

/** Where a request's frames go (the session's batcher). */
export interface RequestSink {
  /** Queues a chunk; throws a RangeError when the chunk cannot fit one stream message. */
  chunk(c: ResponseChunk): void;
  usage(u: Usage): void;
  error(e: RequestError): void;
  /** A promise that resolves when the tunnel accepts more output, or undefined when it does now. */
  writable(): Promise<void> | undefined;
}

/** Why a request stopped early. */
export type StopReason =
  | { readonly kind: "cancel"; readonly detail: string }
  | { readonly kind: "deadline" }
  /** The tunnel ended: nobody is left to tell. */
  | { readonly kind: "tunnel" };

/** One request being served. */
export class RequestRunner {
  readonly requestId: number;
  readonly model: string;
  readonly #req: InferenceRequest;
  /** The router's id of the request, cut short: it goes into every log line about the request. */
  readonly #traceId: string;
  readonly #backend: Backend;
  readonly #sink: RequestSink;
  readonly #log: Logger;
  readonly #credit: CreditWindow;
  readonly #stop = new RequestStop();
  readonly #clock: Clock;
  readonly #observer: RequestObserver | undefined;
  #deadline: Timer | undefined;
  /** run() returned: later stops have nothing to stop. */
  #finished = false;

  constructor(
    req: InferenceRequest,
    backend: Backend,
    sink: RequestSink,
    log: Logger,
    clock: Clock = systemClock,
    observer?: RequestObserver,
  ) {
    this.requestId = req.requestId;
    this.#clock = clock;
    this.#observer = observer;
    this.model = req.model;
    this.#req = req;
    this.#traceId = req.traceId.slice(0, MAX_TRACE_ID_CHARS);
    this.#backend = backend;
    this.#sink = sink;
    this.#log = log;
    this.#credit = new CreditWindow(req.initialCreditBytes);
  }

  /** A Credit frame for this request arrived. */
  grant(bytes: number): void {
    this.#credit.grant(bytes);
  }

  /** Stops the request (aborting the backend call); the first reason wins. */
  stop(reason: StopReason): void {
    if (!this.#finished) this.#stop.abort(reason);
  }

  /** Serves the request to the end; never rejects. */
  async run(): Promise<void> {
    const signal = this.#stop;
    if (this.#req.deadlineMs > 0) {
      // A budget past what a timer holds (2^31-1 ms) is held that long (the Clock contract).
      this.#deadline = this.#clock.setTimeout(() => this.stop({ kind: "deadline" }), this.#req.deadlineMs);
    }
    const id = this.requestId;
    const counter = new CompletionTokenCounter();
    let backendUsage: { promptTokens: number; completionTokens: number } | undefined;
    /** The backend's system_fingerprint travels once, on the first chunk it can ride. */
    let fingerprintSent = false;
    const observer = this.#observer;
    const sentAtMs = this.#clock.now();
    let firstSeen = false;
    let outcome: RequestOutcome = "served";
    try {
      const embedding = this.#req.embedding;
      if (embedding !== undefined) {
        if (this.#backend.embed === undefined) {
          throw new BackendFailure(
            RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE,
            "this backend serves no embeddings",
          );
        }
        this.#log.debug({ requestId: id, traceId: this.#traceId, model: this.model }, "request started");
        const result = await this.#backend.embed(this.model, embedding, signal, { traceId: this.#traceId });
        if (signal.aborted) throw signal.reason;
        // An embedding's whole answer comes at once: its wait is its first token.
        observer?.firstToken(this.#clock.now() - sentAtMs);
        await relayEmbeddings(id, embedding, result, { sink: this.#sink, credit: this.#credit, signal });
        return;
      }
      this.#log.debug({ requestId: id, traceId: this.#traceId, model: this.model }, "request started");
      const { events, promptTokens } = this.#textEvents(signal);
      for await (const ev of events) {
        if (ev.type === "usage") {
          backendUsage = ev;
          continue;
        }
        if (!firstSeen) {
          firstSeen = true;
          observer?.firstToken(this.#clock.now() - sentAtMs);
        }
        let fingerprint = "";
        if (!fingerprintSent && ev.systemFingerprint !== undefined) {
          // One longer than the tunnel allows is left out, not cut: a cut label would be a false one.
          fingerprint = boundedFingerprint(ev.systemFingerprint);
          fingerprintSent = fingerprint !== "";
        }
        const chunk: ResponseChunk = {
          requestId: id,
          contentDelta: ev.content,
          toolCalls: [...ev.toolCalls],
          finishReason: ev.finishReason,
          choiceIndex: ev.choiceIndex ?? 0,
          systemFingerprint: fingerprint,
          embeddings: [],
          reasoningDelta: ev.reasoning,
          logprobs: ev.logprobs === undefined ? [] : [...ev.logprobs],
        };
        const bytes = chunkPayloadBytes(chunk);
        // Holding here stops the pull from the backend: that is the back-pressure.
        // (Awaiting only when needed keeps the hot path free of extra microtasks.)
        if (!this.#credit.fits(bytes)) await this.#credit.waitFor(bytes, signal);
        const writable = this.#sink.writable();
        if (writable !== undefined) await writable;
        if (signal.aborted) throw signal.reason;
        this.#credit.spend(bytes);
        counter.add(
          ev.content,
          ev.reasoning,
          ev.toolCalls.map((t) => t.functionName + t.argumentsDelta).join(""),
          chunk.choiceIndex,
        );
        try {
          this.#sink.chunk(chunk);
        } catch (cause) {
          throw new BackendFailure(
            RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
            "the backend sent a chunk larger than the tunnel's message limit",
            { cause },
          );
        }
      }
      if (signal.aborted) throw signal.reason;
      const usage = {
        requestId: id,
        promptTokens: BigInt(backendUsage?.promptTokens ?? promptTokens()),
        completionTokens: BigInt(backendUsage?.completionTokens ?? counter.total()),
      };
      this.#sink.usage(usage);
      this.#log.debug(
        {
          requestId: id,
          traceId: this.#traceId,
          promptTokens: Number(usage.promptTokens),
          completionTokens: Number(usage.completionTokens),
        },
        "request served",
      );
    } catch (err) {
      const stop = signal.aborted ? (signal.reason as StopReason) : undefined;
      outcome = capacityNews(stop, err);
      this.#fail(stop, err);
    } finally {
      observer?.end(outcome, this.#clock.now() - sentAtMs);
      this.#clock.clearTimeout(this.#deadline);
      // Later stops are no-ops. Nothing is left to abort: the backend call
      // ended with the loop (its iterator's cleanup released the response),
      // and firing the signal now would only cost an event per request.
      this.#finished = true;
    }
  }

  /** The backend's events for a chat or completion request, and the prompt's count should it report none. */
  #textEvents(signal: RequestStop): { events: AsyncIterable<BackendEvent>; promptTokens: () => number } {
    const completion = this.#req.completion;
    if (completion !== undefined) {
      if (this.#backend.complete === undefined) {
        throw new BackendFailure(
          RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE,
          "this backend serves no text completions",
        );
      }
      return {
        events: this.#backend.complete(this.model, completion, signal, { traceId: this.#traceId }),
        promptTokens: () => completion.prompt.reduce((n, p) => n + countTextTokens(p), 0),
      };
    }
    const chat = this.#req.chat;
    if (chat === undefined) {
      throw new BackendFailure(
        RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
        "the request has no chat body",
      );
    }
    return {
      events: this.#backend.chat(this.model, chat, signal, { traceId: this.#traceId }),
      promptTokens: () => countPromptTokens(chat),
    };
  }

  #fail(stop: StopReason | undefined, err: unknown): void {
    const requestId = this.requestId;
    // The router's id of the request: the user's x-request-id, so this line joins the router's.
    const traceId = this.#traceId;
    if (stop !== undefined) {
      if (stop.kind === "tunnel") {
        this.#log.debug({ requestId, traceId }, "request dropped: the tunnel ended");
        return;
      }
      if (stop.kind === "cancel") {
        this.#log.debug({ requestId, traceId, reason: stop.detail }, "request cancelled by the router");
        this.#sink.error({
          requestId,
          code: RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED,
          message: "cancelled",
          httpStatus: 0,
        });
        return;
      }
      const message = `the backend did not finish within the ${this.#req.deadlineMs} ms deadline`;
      this.#log.warn({ requestId, traceId, code: RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT }, message);
      this.#sink.error({
        requestId,
        code: RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT,
        message,
        httpStatus: 0,
      });
      return;
    }
    if (err instanceof BackendFailure) {
      this.#log.warn(
        { requestId, traceId, code: err.code, httpStatus: err.httpStatus, err: err.cause ?? err },
        err.message,
      );
      this.#sink.error({ requestId, code: err.code, message: err.message, httpStatus: err.httpStatus });
      return;
    }
    this.#log.error({ requestId, traceId, err }, "request failed with an internal error");
    this.#sink.error({
      requestId,
      code: RequestErrorCode.REQUEST_ERROR_CODE_INTERNAL,
      message: "internal miner error",
      httpStatus: 0,
    });
  }
}

/** Backend failures that say it had no room: the miner's learned concurrency is cut on them. */
const OVERLOAD_CODES: ReadonlySet<RequestErrorCode> = new Set([
  RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE,
  RequestErrorCode.REQUEST_ERROR_CODE_OVERLOADED,
  RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT,
]);

/**
 * What a failed request says about the backend's capacity: a backend that
 * was unavailable, overloaded, rate limiting (429) or failing (5xx) is
 * "overloaded"; a passed deadline is "deadline" (news only when the first
 * token was already late, adaptive-concurrency.ts); a cancel, a closed
 * tunnel or a request the backend refused (4xx) is no news.
 */
function capacityNews(stop: StopReason | undefined, err: unknown): RequestOutcome {
  if (stop !== undefined) return stop.kind === "deadline" ? "deadline" : "other";
  if (!(err instanceof BackendFailure)) return "other";
  if (OVERLOAD_CODES.has(err.code)) return "overloaded";
  return err.httpStatus === 429 || err.httpStatus >= 500 ? "overloaded" : "other";
}
