/**
 * The tunnel's limits on the logprobs a ResponseChunk carries (tunnel.proto,
 * ResponseChunk.logprobs), shared by the miner that must keep to them and
 * the router that enforces them.
 *
 * Why per-chunk limits: logprob entries with empty token strings cost no
 * flow-control credit, yet each becomes dozens of bytes of JSON for the
 * user. Credit alone would let a miner turn a few wire bytes into megabytes
 * of output, so the number of entries is bounded too.
 */
import type { ResponseChunk } from "../gen/tensorclaw/v1/tunnel.js";

/**
 * Most TokenLogprob entries in one ResponseChunk. A streamed backend sends
 * one or a few tokens per chunk; a whole (non-streamed) answer is split by
 * the miner into chunks of at most this many.
 */
export const MAX_LOGPROBS_PER_CHUNK = 256;

/** Most alternatives per token: OpenAI's own `top_logprobs` ceiling. */
export const MAX_TOP_LOGPROBS = 20;

/**
 * The log-probability that stands for "impossible" (-inf, or a value that
 * is not a number): JSON has no -Infinity, and vLLM uses this value too.
 */
export const LOGPROB_FLOOR = -9999;

/**
 * Why a chunk's logprobs break the tunnel's limits, or undefined when they
 * keep to them. The router fails such a request with PROTOCOL rather than
 * trimming it: a miner that sends more than the contract allows is broken or
 * hostile, and what it sent cannot be trusted to line up with the text.
 */
export function logprobsProblem(chunk: ResponseChunk): string | undefined {
  const entries = chunk.logprobs;
  if (entries.length === 0) return undefined;
  if (entries.length > MAX_LOGPROBS_PER_CHUNK) {
    return `${entries.length} logprobs in one chunk (at most ${MAX_LOGPROBS_PER_CHUNK})`;
  }
  for (const e of entries) {
    if (e.topLogprobs.length > MAX_TOP_LOGPROBS) {
      return `${e.topLogprobs.length} top_logprobs for one token (at most ${MAX_TOP_LOGPROBS})`;
    }
  }
  return undefined;
}

/**
 * A log-probability as it may be shown or judged: at most 0 (a probability
 * is at most 1; backends round to slightly above), at least
 * {@link LOGPROB_FLOOR}, and NaN read as the floor.
 */
export function boundedLogprob(v: number): number {
  if (Number.isNaN(v) || v <= LOGPROB_FLOOR) return LOGPROB_FLOOR;
  return Math.min(v, 0);
}
