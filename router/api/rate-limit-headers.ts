import type { ServerResponse } from "node:http";
import { TensorClawError } from "../../common/errors.js";
import type { BucketLevels, RateLimits, ReserveResult } from "./rate-limiter.js";

/**
 * OpenAI's rate-limit headers, from the levels a reservation left in a key's
 * buckets (rate-limiter.ts). Per bucket the key has (a limit of 0 is
 * unlimited and gets no headers):
 *
 *     x-ratelimit-limit-<kind>      the per-minute allowance
 *     x-ratelimit-remaining-<kind>  whole units left now (never below 0)
 *     x-ratelimit-reset-<kind>      time until the bucket is full again
 *
 * with `<kind>` `requests` or `tokens`. A bucket refills continuously, so
 * "reset" is when the whole allowance is back, as OpenAI means it.
 */

/** Names of the headers, for CORS `access-control-expose-headers`. */
export const RATE_LIMIT_HEADER_NAMES: readonly string[] = [
  "x-ratelimit-limit-requests",
  "x-ratelimit-remaining-requests",
  "x-ratelimit-reset-requests",
  "x-ratelimit-limit-tokens",
  "x-ratelimit-remaining-tokens",
  "x-ratelimit-reset-tokens",
];

/**
 * A duration as OpenAI writes it in `x-ratelimit-reset-*` (Go's notation):
 * whole milliseconds under a second ("120ms"), else hours, minutes and
 * seconds with up to three decimals ("1s", "1.5s", "6m0s", "1h0m0s").
 * Rounded up to the millisecond; negative durations are "0s".
 */
export function formatResetDuration(ms: number): string {
  const t = Math.max(0, Math.ceil(ms));
  if (t === 0) return "0s";
  if (t < 1000) return `${t}ms`;
  const h = Math.floor(t / 3_600_000);
  const m = Math.floor((t % 3_600_000) / 60_000);
  const s = `${(t % 60_000) / 1000}s`;
  if (h > 0) return `${h}h${m}m${s}`;
  return m > 0 ? `${m}m${s}` : s;
}

/** Milliseconds until a bucket at `level` of a per-minute `limit` is full. */
function untilFull(limit: number, level: number): number {
  return (Math.max(0, limit - level) * 60_000) / limit;
}

/** The headers for a key's limits and levels; empty when the key has no limit. */
export function rateLimitHeaders(limits: RateLimits, levels: BucketLevels): [string, string][] {
  const out: [string, string][] = [];
  const rpm = limits.requestsPerMinute;
  if (rpm > 0) {
    out.push(
      ["x-ratelimit-limit-requests", String(rpm)],
      ["x-ratelimit-remaining-requests", String(Math.max(0, Math.floor(levels.requests)))],
      ["x-ratelimit-reset-requests", formatResetDuration(untilFull(rpm, levels.requests))],
    );
  }
  const tpm = limits.tokensPerMinute;
  if (tpm > 0) {
    out.push(
      ["x-ratelimit-limit-tokens", String(tpm)],
      ["x-ratelimit-remaining-tokens", String(Math.max(0, Math.floor(levels.tokens)))],
      ["x-ratelimit-reset-tokens", formatResetDuration(untilFull(tpm, levels.tokens))],
    );
  }
  return out;
}

/**
 * Puts a reservation's x-ratelimit-* headers on the response (whatever it
 * turns out to be) and throws `rate_limited`, with the wait, when the
 * reservation was refused.
 */
export function applyReservation(
  res: ServerResponse,
  limits: RateLimits,
  r: ReserveResult,
): asserts r is Extract<ReserveResult, { ok: true }> {
  if (r.levels !== undefined) {
    for (const [name, value] of rateLimitHeaders(limits, r.levels)) res.setHeader(name, value);
  }
  if (!r.ok) {
    throw new TensorClawError("rate_limited", "Rate limit exceeded for this API key.", {
      retryAfterMs: r.retryAfterMs,
    });
  }
}
