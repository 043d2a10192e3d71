import type { ServerResponse } from "node:http";
import type { TensorClawError } from "../../common/errors.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import type { ClampedUsage } from "../usage/clamp.js";
import { errorEventJson, sendError, sendJson } from "./http.js";
import type { LogprobsAsk } from "./openai-logprobs.js";
import {
  ChunkShaper,
  CompletionAggregator,
  type CompletionIdentity,
  openaiUsage,
} from "./openai-response.js";
import { SseWriter } from "./sse.js";

/**
 * Where one chat answer goes while the chat endpoint's relay loop runs:
 * server-sent events as chunks arrive ({@link SseSink}) or one JSON body at
 * the end ({@link JsonSink}). The loop decides failover, outcome and usage;
 * a sink only writes.
 */
export interface ChatSink {
  /** Chunks taken so far, over all attempts. After the first, no other miner may take over. */
  readonly chunks: number;
  /** True when the client went away. */
  readonly gone: boolean;
  /** Waiting for a miner begins. */
  begin(): void;
  /**
   * The model that will answer (a `models` fallback moved on to another):
   * the answer names it. Only ever called before the first chunk.
   */
  serving(model: string): void;
  /**
   * One chunk of the answer. False (or a promise of false) when the client
   * cannot take it any more: the loop then cancels the miner's call.
   */
  chunk(chunk: ResponseChunk): boolean | Promise<boolean>;
  /** No more chunks will come (the answer completed or failed). */
  settle(): void;
  /** Writes the end of a completed answer; `usage` gives the credited counts. Resolves to the status. */
  complete(usage: () => ClampedUsage): number | Promise<number>;
  /** Tells a client that is still there about a failure; returns the status. */
  fail(error: TensorClawError): number;
}

/**
 * Streams the answer as `chat.completion.chunk` events. Keep-alive comments
 * go out while the first token is awaited; headers go out lazily, so a
 * failure before any output is still a plain HTTP error, and a failure
 * after is one error event with no `[DONE]`.
 */
export class SseSink implements ChatSink {
  chunks = 0;
  readonly #sse: SseWriter;
  #shaper: ChunkShaper;
  readonly #res: ServerResponse;
  readonly #requestId: string;
  readonly #includeUsage: boolean;
  #ident: CompletionIdentity;
  readonly #logprobs: LogprobsAsk | undefined;

  constructor(
    res: ServerResponse,
    requestId: string,
    ident: CompletionIdentity,
    includeUsage: boolean,
    keepAliveMs: number,
    logprobs?: LogprobsAsk,
  ) {
    this.#res = res;
    this.#requestId = requestId;
    this.#includeUsage = includeUsage;
    this.#sse = new SseWriter(res, requestId, keepAliveMs);
    this.#ident = ident;
    this.#logprobs = logprobs;
    this.#shaper = new ChunkShaper(ident, includeUsage, logprobs);
  }

  serving(model: string): void {
    if (this.chunks > 0 || model === this.#ident.model) return;
    this.#ident = { ...this.#ident, model };
    this.#shaper = new ChunkShaper(this.#ident, this.#includeUsage, this.#logprobs);
  }

  get gone(): boolean {
    return this.#sse.gone;
  }

  begin(): void {
    this.#sse.startKeepAlive();
  }

  chunk(chunk: ResponseChunk): Promise<boolean> {
    this.chunks++;
    this.#sse.stopKeepAlive();
    return this.#sse.data(this.#shaper.chunk(chunk));
  }

  settle(): void {
    this.#sse.stopKeepAlive();
  }

  async complete(usage: () => ClampedUsage): Promise<number> {
    if (this.#includeUsage) {
      const u = usage();
      await this.#sse.data(this.#shaper.usageChunk(openaiUsage(u.promptTokens, u.completionTokens)));
    }
    this.#sse.done();
    return 200;
  }

  fail(error: TensorClawError): number {
    if (this.#sse.started) {
      this.#sse.fail(errorEventJson(error));
      return 200;
    }
    return sendError(this.#res, error, this.#requestId);
  }
}

/** Collects the answer into one `chat.completion` JSON body. */
export class JsonSink implements ChatSink {
  readonly #agg: CompletionAggregator;
  readonly #res: ServerResponse;
  readonly #requestId: string;
  #ident: CompletionIdentity;

  constructor(
    res: ServerResponse,
    requestId: string,
    ident: CompletionIdentity,
    logprobs?: LogprobsAsk,
    choices = 1,
  ) {
    this.#agg = new CompletionAggregator(logprobs, choices);
    this.#res = res;
    this.#requestId = requestId;
    this.#ident = ident;
  }

  get chunks(): number {
    return this.#agg.chunks;
  }

  get gone(): boolean {
    return this.#res.destroyed;
  }

  begin(): void {}

  serving(model: string): void {
    if (this.chunks === 0) this.#ident = { ...this.#ident, model };
  }

  chunk(chunk: ResponseChunk): boolean {
    this.#agg.add(chunk);
    return true;
  }

  settle(): void {}

  complete(usage: () => ClampedUsage): number {
    const u = usage();
    const body = this.#agg.completion(this.#ident, openaiUsage(u.promptTokens, u.completionTokens));
    sendJson(this.#res, 200, body, this.#requestId);
    return 200;
  }

  fail(error: TensorClawError): number {
    return sendError(this.#res, error, this.#requestId);
  }
}
