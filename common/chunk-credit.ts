import type { Embedding, TokenLogprob } from "../gen/tensorclaw/v1/chat.js";
import type { ResponseChunk } from "../gen/tensorclaw/v1/tunnel.js";

/**
 * Bytes of flow-control credit one ResponseChunk consumes (tunnel.proto,
 * "Flow control"): its answer bytes ({@link chunkAnswerBytes}) plus the
 * UTF-8 length of every logprob `token` string, the alternatives' included,
 * and of `system_fingerprint`, plus 4 bytes per value of every embedding
 * vector. Both ends must count the same way, so this is the one definition.
 */
export function chunkPayloadBytes(chunk: ResponseChunk): number {
  const n = chunkAnswerBytes(chunk) + utf8Length(chunk.systemFingerprint);
  const described = chunk.logprobs.length === 0 ? n : n + logprobTokenBytes(chunk.logprobs);
  return chunk.embeddings.length === 0 ? described : described + embeddingBytes(chunk.embeddings);
}

/** Bytes of credit embedding vectors cost: 4 per value (a float32 on the wire). */
export function embeddingBytes(vectors: readonly Embedding[]): number {
  let n = 0;
  for (const v of vectors) n += 4 * v.values.length;
  return n;
}

/**
 * The UTF-8 length of the answer a chunk carries: `content_delta`,
 * `reasoning_delta` and every ToolCallDelta string field. Logprobs are left
 * out: they describe the answer, they are not part of it, so the router's
 * usage bounds (which rest on bytes relayed) must not grow with them.
 */
export function chunkAnswerBytes(chunk: ResponseChunk): number {
  let n = utf8Length(chunk.contentDelta) + utf8Length(chunk.reasoningDelta);
  for (const t of chunk.toolCalls) {
    n += utf8Length(t.id) + utf8Length(t.type) + utf8Length(t.functionName) + utf8Length(t.argumentsDelta);
  }
  return n;
}

/** The UTF-8 length of every `token` string of `entries`, their `top_logprobs` included. */
export function logprobTokenBytes(entries: readonly TokenLogprob[]): number {
  let n = 0;
  for (const e of entries) {
    n += utf8Length(e.token);
    for (const t of e.topLogprobs) n += utf8Length(t.token);
  }
  return n;
}

function utf8Length(s: string): number {
  return s.length === 0 ? 0 : Buffer.byteLength(s, "utf8");
}
