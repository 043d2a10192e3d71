/**
 * What a miner may send back for each kind of request, checked on arrival
 * (TunnelCall.onChunk / onUsage) so that nothing malformed is ever queued
 * for the caller. Everything a miner sends is a claim: a chat or completion
 * answer carries no vectors and names only the choices asked for; an
 * embeddings answer carries nothing but vectors, exactly one per input, all
 * of one length (the `dimensions` asked for, when asked), every value finite.
 * A breach fails the request with PROTOCOL; the miner earns nothing for it.
 */
import type { ModelKind } from "../../common/request-kinds.js";
import type { ChatRequest, CompletionRequest, EmbeddingRequest } from "../../gen/tensorclaw/v1/chat.js";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import type { DispatchBody } from "./types.js";

/** Longest embedding vector accepted (the largest real models use 4,096; this leaves room). */
export const MAX_EMBEDDING_DIMENSIONS = 16_384;
/**
 * Most vector values one request may bring back, all inputs together: what
 * the router holds in memory for one answer is bounded by this (32 MiB as
 * float32), whatever the miner sends. 2,048 inputs of 4,096 values fit.
 */
export const MAX_EMBEDDING_VALUES_PER_REQUEST = 2048 * 4096;

/** A request's check of what comes back. */
export interface ChunkCheck {
  /** Why `chunk` is not a valid part of this request's answer, or undefined. */
  chunk(chunk: ResponseChunk): string | undefined;
  /** Why the answer is incomplete when the miner says it is done (Usage), or undefined. */
  end(): string | undefined;
}

/** The kind of a dispatch body. */
export function dispatchKind(body: DispatchBody): ModelKind {
  if ("messages" in body) return "chat";
  return "completion" in body ? "completion" : "embedding";
}

/** The check for what a request may bring back. */
export function chunkCheckFor(body: DispatchBody): ChunkCheck {
  if ("messages" in body || "completion" in body) return new TextCheck();
  return new EmbeddingCheck(body.embedding);
}

/** The choices a request asks for: what its chunks' `choice_index` must stay below (TunnelCall). */
export function dispatchChoices(body: DispatchBody): number {
  if ("messages" in body) return choicesOfChat(body);
  return "completion" in body ? choicesOfCompletion(body.completion) : 1;
}

/** The choices a chat request asks for (`n`, absent: 1). */
export function choicesOfChat(chat: ChatRequest): number {
  return Math.max(1, chat.n ?? 1);
}

/** The choices a completion request asks for: one per prompt and sample. */
export function choicesOfCompletion(c: CompletionRequest): number {
  return Math.max(1, c.prompt.length) * Math.max(1, c.n ?? 1);
}

/** Chat and completion answers: text, no vectors (the call checks choice indexes: dispatchChoices). */
class TextCheck implements ChunkCheck {
  chunk(c: ResponseChunk): string | undefined {
    return c.embeddings.length > 0
      ? "embedding vectors in an answer that is not an embeddings request"
      : undefined;
  }

  end(): string | undefined {
    return undefined;
  }
}

/** Embeddings answers: one vector per input, nothing else. */
class EmbeddingCheck implements ChunkCheck {
  readonly #inputs: number;
  readonly #dimensions: number | undefined;
  readonly #seen: Uint8Array;
  #received = 0;
  #length: number | undefined;
  #values = 0;

  constructor(req: EmbeddingRequest) {
    this.#inputs = req.input.length;
    this.#dimensions = req.dimensions;
    this.#seen = new Uint8Array(req.input.length);
  }

  chunk(c: ResponseChunk): string | undefined {
    if (
      c.contentDelta !== "" ||
      c.reasoningDelta !== "" ||
      c.toolCalls.length > 0 ||
      c.logprobs.length > 0 ||
      c.finishReason !== FinishReason.FINISH_REASON_UNSPECIFIED ||
      c.choiceIndex !== 0
    ) {
      return "text, tool calls, logprobs or a finish reason in an embeddings answer";
    }
    for (const e of c.embeddings) {
      const problem = this.#vector(e.index, e.values);
      if (problem !== undefined) return problem;
    }
    return undefined;
  }

  #vector(index: number, values: readonly number[]): string | undefined {
    if (index >= this.#inputs) return `a vector for input ${index} of ${this.#inputs}`;
    if (this.#seen[index] === 1) return `a second vector for input ${index}`;
    const n = values.length;
    if (n === 0 || n > MAX_EMBEDDING_DIMENSIONS) {
      return `a vector of ${n} values (1 to ${MAX_EMBEDDING_DIMENSIONS})`;
    }
    if (this.#dimensions !== undefined && n !== this.#dimensions) {
      return `a vector of ${n} values when ${this.#dimensions} dimensions were asked for`;
    }
    if (this.#length !== undefined && n !== this.#length) {
      return `vectors of different lengths (${this.#length} and ${n})`;
    }
    this.#values += n;
    if (this.#values > MAX_EMBEDDING_VALUES_PER_REQUEST) {
      return `more than ${MAX_EMBEDDING_VALUES_PER_REQUEST} vector values in one answer`;
    }
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(values[i]))
        return `a value that is not a finite number in the vector for input ${index}`;
    }
    this.#length = n;
    this.#seen[index] = 1;
    this.#received++;
    return undefined;
  }

  end(): string | undefined {
    if (this.#received === this.#inputs) return undefined;
    return `usage after ${this.#received} of ${this.#inputs} vectors`;
  }
}
