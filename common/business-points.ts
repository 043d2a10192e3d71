/*
 * The subnet's business-point arithmetic, shared by the router (which
 * reports points in UsageReport) and the validator (which scores them), so
 * the two can never disagree on the rate.
 */

/** Tokens per business point, before the tier multiplier. */
export const TOKENS_PER_POINT = 10_000;

/**
 * Business points of a token count under a tier multiplier. Negative or
 * non-finite inputs count as 0, so a broken report can never produce a
 * negative or NaN score.
 */
export function businessPoints(tokens: number, multiplier: number): number {
  return (nonNegative(tokens) / TOKENS_PER_POINT) * nonNegative(multiplier);
}

/** `n` when it is a finite positive number, else 0. */
export function nonNegative(n: number): number {
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** User-request outcome counts of one miner for one model (UsageReport's ModelUsage fields). */
export interface OutcomeTally {
  readonly served: number;
  readonly failedBeforeOutput: number;
  readonly failedAfterOutput: number;
  readonly deadlineCut: number;
}

/**
 * A miner's user success rate for a model: served / every attempt that
 * reached it (user cancels excluded). 1 when none was recorded, so usage
 * from before outcomes were kept is not penalised.
 */
export function successRate(o: OutcomeTally): number {
  const served = nonNegative(o.served);
  const attempts =
    served +
    nonNegative(o.failedBeforeOutput) +
    nonNegative(o.failedAfterOutput) +
    nonNegative(o.deadlineCut);
  return attempts === 0 ? 1 : served / attempts;
}
