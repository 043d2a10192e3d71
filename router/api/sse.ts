import type { ServerResponse } from "node:http";
import { baseHeaders } from "./http.js";

/**
 * Server-sent events towards one client. Headers go out lazily: on the first
 * data event, or on the first keep-alive comment when the first token is
 * slow — until then the request can still fail with a plain HTTP status
 * (503, 504, 502).
 */
export class SseWriter {
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private corked = false;
  /** An event was written in this turn of the event loop. */
  private wrote = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: string,
    /** Interval of `: keep-alive` comments while nothing else is written; 0 disables them. */
    private readonly keepAliveMs: number,
  ) {
    res.once("close", () => {
      this.closed = true;
      this.stopKeepAlive();
    });
  }

  /** True once headers (and so a 200 status) were sent. */
  get started(): boolean {
    return this.res.headersSent;
  }

  /** True when the client went away. */
  get gone(): boolean {
    return this.closed || this.res.destroyed;
  }

  /** Starts the keep-alive timer (call when waiting for the miner begins). */
  startKeepAlive(): void {
    if (this.keepAliveMs <= 0 || this.timer !== undefined) return;
    this.timer = setInterval(() => {
      if (this.gone) return;
      this.begin();
      this.res.write(": keep-alive\n\n");
    }, this.keepAliveMs);
    this.timer.unref();
  }

  /** Stops keep-alive comments (the stream has data flowing or is over). */
  stopKeepAlive(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private begin(): void {
    if (this.res.headersSent) return;
    this.res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache, no-transform",
      // Tells nginx-style proxies not to buffer the stream.
      "x-accel-buffering": "no",
      ...baseHeaders(this.requestId),
    });
    // No flushHeaders(): every caller writes right after, and the head then
    // leaves in the same socket write as the first event (one syscall, one
    // packet, instead of two).
  }

  /**
   * Writes one `data:` event, named `event` when given (the Responses API
   * names its events). Resolves false when the client went away; waits for
   * the socket to drain when its buffer is full, so a slow client slows
   * only its own request.
   */
  async data(json: string, event?: string): Promise<boolean> {
    if (this.gone) return false;
    this.begin();
    const text = event === undefined ? `data: ${json}\n\n` : `event: ${event}\ndata: ${json}\n\n`;
    let ok: boolean;
    if (!this.wrote) {
      // The first event of a turn leaves now: a stream's token does not wait while the rest of
      // its tunnel batch (other streams' tokens) is relayed. node:http corks the socket for the
      // rest of the turn on every write, so this write is let out at once.
      this.wrote = true;
      process.nextTick(this.endTurn);
      ok = this.res.write(text);
      this.res.socket?.uncork();
    } else {
      // Later events of the same turn (several of this stream's chunks in one batch) leave
      // together, in one socket write at the end of the turn.
      if (!this.corked) {
        this.corked = true;
        this.res.cork();
      }
      ok = this.res.write(text);
    }
    if (ok) return true;
    return new Promise<boolean>((resolve) => {
      const done = (ok: boolean) => {
        this.res.off("drain", onDrain);
        this.res.off("close", onClose);
        resolve(ok);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      this.res.once("drain", onDrain);
      this.res.once("close", onClose);
    });
  }

  private readonly endTurn = (): void => {
    this.wrote = false;
    if (!this.corked) return;
    this.corked = false;
    this.res.uncork();
  };

  /** Ends a successful stream with `data: [DONE]`. */
  done(): void {
    this.stopKeepAlive();
    if (this.gone) return;
    this.begin();
    this.res.end("data: [DONE]\n\n");
  }

  /** Ends a successful stream whose last event says it is complete (no `[DONE]`: the Responses API). */
  close(): void {
    this.stopKeepAlive();
    if (this.gone) return;
    this.begin();
    this.res.end();
  }

  /**
   * Ends a failed stream that already started: one OpenAI-style error event
   * (named `event` when given) and no `[DONE]`, so no client mistakes the
   * truncated answer for a whole one.
   */
  fail(errorJson: string, event?: string): void {
    this.stopKeepAlive();
    if (this.gone) return;
    this.begin();
    this.res.end(event === undefined ? `data: ${errorJson}\n\n` : `event: ${event}\ndata: ${errorJson}\n\n`);
  }
}
