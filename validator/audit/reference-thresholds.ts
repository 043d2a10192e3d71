/**
 * Pass marks for reference scores (reference-score.ts), calibrated on
 * honest answers: the reference server answers a few audit-like prompts
 * itself (temperature 0, the audits' seed and `max_tokens`), those answers
 * are scored exactly like a miner's, and the marks sit a margin below the
 * worst of them. So the marks follow the model (a large model is sure of
 * its greedy tokens, a tiny n-gram model much less) and the scoring path
 * (a tokenizer round trip costs every answer alike), and an honest miner
 * of the same model, which differs from the reference only by numerics
 * (another GPU, batch or quantisation), clears them.
 *
 * Bounds keep calibration from going astray: a mark is never stricter than
 * its ceiling (a near-perfect calibration must still leave room for
 * numerics) nor more lenient than its floor (a confused reference must not
 * let filler through).
 */
import { fmt, type Judgement } from "./judgement.js";
import type { ReferenceScore } from "./reference-score.js";

/** The pass marks: an answer passes when it reaches both. */
export interface Thresholds {
  /** Lowest mean log-probability (nats per token) that passes. */
  readonly minMeanLogprob: number;
  /** Lowest share of tokens inside the reference's top k that passes. */
  readonly minTopKShare: number;
}

/** How marks are drawn from calibration. */
export interface ThresholdPolicy {
  /** Nats per token below the worst honest mean that still pass. */
  readonly meanLogprobMargin: number;
  /** The mean-logprob mark is never below this (most lenient)... */
  readonly meanLogprobFloor: number;
  /** ...nor above this (strictest). */
  readonly meanLogprobCeiling: number;
  /** Top-k share below the worst honest share that still passes. */
  readonly topKShareMargin: number;
  /** The top-k mark is never below this... */
  readonly topKShareFloor: number;
  /** ...nor above this. */
  readonly topKShareCeiling: number;
  /** Fewest scored calibration answers to set marks from. */
  readonly minSamples: number;
  /** Completions shorter than this many tokens are too noisy to judge (unverifiable). */
  readonly minTokens: number;
}

/**
 * Defaults. Greedy answers of an LLM under itself average about -0.1 to
 * -0.5 nats per token with nearly every token in the top 5; fluent text
 * that is not the model's answer averages -3 nats or worse and leaves the
 * top 5 most of the time. So a large model's marks sit at the ceilings
 * (-1.5 nats, 0.8 of tokens), leaving an honest miner whose numerics differ
 * (another GPU, a quantised build) a wide berth, and a small model with
 * flatter distributions (the demo n-gram model) gets marks 1 nat and 0.15
 * of share below its own worst answer, down to the floors.
 */
export const DEFAULT_THRESHOLD_POLICY: ThresholdPolicy = Object.freeze({
  meanLogprobMargin: 1,
  meanLogprobFloor: -5,
  meanLogprobCeiling: -1.5,
  topKShareMargin: 0.15,
  topKShareFloor: 0.5,
  topKShareCeiling: 0.8,
  minSamples: 2,
  minTokens: 3,
});

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

/** The calibration scores marks can be drawn from: long enough to judge, with finite numbers. */
export function usableSamples(
  samples: readonly ReferenceScore[],
  policy: ThresholdPolicy = DEFAULT_THRESHOLD_POLICY,
): ReferenceScore[] {
  return samples.filter(
    (s) => s.tokens >= policy.minTokens && Number.isFinite(s.meanLogprob) && Number.isFinite(s.topKShare),
  );
}

/**
 * Marks from the scores of honest answers; undefined when fewer than
 * `minSamples` usable ones, so nobody is judged on marks drawn from nothing.
 */
export function calibrateThresholds(
  samples: readonly ReferenceScore[],
  policy: ThresholdPolicy = DEFAULT_THRESHOLD_POLICY,
): Thresholds | undefined {
  const usable = usableSamples(samples, policy);
  if (usable.length < Math.max(1, policy.minSamples)) return undefined;
  const worstMean = Math.min(...usable.map((s) => s.meanLogprob));
  const worstShare = Math.min(...usable.map((s) => s.topKShare));
  return {
    minMeanLogprob: clamp(
      worstMean - policy.meanLogprobMargin,
      policy.meanLogprobFloor,
      policy.meanLogprobCeiling,
    ),
    minTopKShare: clamp(worstShare - policy.topKShareMargin, policy.topKShareFloor, policy.topKShareCeiling),
  };
}

/** Judges one scored answer against the marks. */
export function judgeReferenceScore(
  score: ReferenceScore,
  marks: Thresholds,
  policy: ThresholdPolicy = DEFAULT_THRESHOLD_POLICY,
): Judgement {
  const numbers = `mean logprob ${fmt(score.meanLogprob)}, top-k share ${fmt(score.topKShare)} over ${score.tokens} tokens`;
  if (score.tokens < policy.minTokens) {
    return { outcome: "unverifiable", detail: `too short to judge: ${numbers}` };
  }
  const why: string[] = [];
  if (!(score.meanLogprob >= marks.minMeanLogprob)) {
    why.push(`mean logprob ${fmt(score.meanLogprob)} < ${fmt(marks.minMeanLogprob)}`);
  }
  if (!(score.topKShare >= marks.minTopKShare)) {
    why.push(`top-k share ${fmt(score.topKShare)} < ${fmt(marks.minTopKShare)}`);
  }
  return why.length > 0
    ? { outcome: "failed", detail: `${why.join("; ")} (${score.tokens} tokens)` }
    : { outcome: "passed", detail: numbers };
}
