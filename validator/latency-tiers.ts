import { TensorClawError } from "../common/errors.js";

/**
 * One response-time tier: a probe whose latency is at most `upToMs` (and
 * above the previous tier's bound) scores `score` on the 0–100 scale.
 */
export interface LatencyTier {
  readonly upToMs: number;
  readonly score: number;
}

/** Fixed by the subnet's rules: a probe faster than this scores 100. */
export const FASTEST_BELOW_MS = 100;
/** Score of a probe faster than {@link FASTEST_BELOW_MS}. */
export const FASTEST_SCORE = 100;
/** Fixed by the subnet's rules: a probe slower than this scores 20. */
export const SLOWEST_ABOVE_MS = 2000;
/** Score of a probe slower than {@link SLOWEST_ABOVE_MS}. */
export const SLOWEST_SCORE = 20;

/**
 * The configurable tiers between the fixed ends (100 ms → 100, > 2 s → 20).
 * The last tier must end exactly at 2 s so every latency falls in one tier.
 */
export const DEFAULT_LATENCY_TIERS: readonly LatencyTier[] = Object.freeze([
  { upToMs: 250, score: 90 },
  { upToMs: 500, score: 75 },
  { upToMs: 1000, score: 55 },
  { upToMs: 2000, score: 40 },
]);

function bad(why: string): never {
  throw new TensorClawError("config_invalid", `invalid setting --latency-tiers: ${why}`);
}

/**
 * Checks that tiers are monotone: bounds strictly increasing within
 * (100 ms, 2000 ms] and ending at 2000 ms, scores non-increasing within
 * [20, 100]. Returns a frozen copy; throws `config_invalid` naming the fault.
 */
export function validateLatencyTiers(tiers: readonly LatencyTier[]): readonly LatencyTier[] {
  if (tiers.length === 0) bad("at least one tier is needed (the last must end at 2000 ms)");
  let prevBound = FASTEST_BELOW_MS;
  let prevScore = FASTEST_SCORE;
  for (const [i, t] of tiers.entries()) {
    if (!Number.isFinite(t.upToMs) || !Number.isFinite(t.score)) bad(`tier ${i + 1} is not a number`);
    if (t.upToMs <= prevBound) {
      bad(`tier ${i + 1} bound ${t.upToMs} ms must be above ${prevBound} ms (bounds increase)`);
    }
    if (t.upToMs > SLOWEST_ABOVE_MS)
      bad(`tier ${i + 1} bound ${t.upToMs} ms is above ${SLOWEST_ABOVE_MS} ms`);
    if (t.score > prevScore) bad(`tier ${i + 1} score ${t.score} is above the faster tier's ${prevScore}`);
    if (t.score < SLOWEST_SCORE) bad(`tier ${i + 1} score ${t.score} is below ${SLOWEST_SCORE}`);
    prevBound = t.upToMs;
    prevScore = t.score;
  }
  if (prevBound !== SLOWEST_ABOVE_MS)
    bad(`the last tier must end at ${SLOWEST_ABOVE_MS} ms, not ${prevBound}`);
  return Object.freeze(tiers.map((t) => Object.freeze({ upToMs: t.upToMs, score: t.score })));
}

/** Parses `"250:90,500:75,1000:55,2000:40"` (ms:score pairs) and validates it. */
export function parseLatencyTiers(text: string): readonly LatencyTier[] {
  const tiers = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((pair) => {
      const m = /^(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)$/.exec(pair);
      if (m === null) bad(`expected ms:score pairs such as 250:90, got ${JSON.stringify(pair)}`);
      return { upToMs: Number(m[1]), score: Number(m[2]) };
    });
  return validateLatencyTiers(tiers);
}

/** Renders tiers back to the `ms:score,…` form (for help and logs). */
export function formatLatencyTiers(tiers: readonly LatencyTier[]): string {
  return tiers.map((t) => `${t.upToMs}:${t.score}`).join(",");
}

/**
 * The response-time score of one probe latency. A latency that is not a
 * finite non-negative number is treated as the slowest tier.
 */
export function latencyTierScore(latencyMs: number, tiers: readonly LatencyTier[]): number {
  if (!Number.isFinite(latencyMs) || latencyMs < 0) return SLOWEST_SCORE;
  if (latencyMs < FASTEST_BELOW_MS) return FASTEST_SCORE;
  for (const t of tiers) if (latencyMs <= t.upToMs) return t.score;
  return SLOWEST_SCORE;
}
