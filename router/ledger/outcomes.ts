import type { UsageEvent, UsageOutcome } from "../usage/event.js";

/**
 * User-request outcomes of one (miner, model) over a window, kept in the
 * ledger's buckets beside the token counts. A miner's success rate for a
 * model — served / (served + failed before output + failed after output +
 * cut by the deadline) — scales the business points of that model; user
 * cancels count on neither side.
 */
export interface OutcomeCounts {
  readonly served: number;
  readonly failedBeforeOutput: number;
  readonly failedAfterOutput: number;
  readonly deadlineCut: number;
}

/** No outcome recorded. */
export const NO_OUTCOMES: OutcomeCounts = Object.freeze({
  served: 0,
  failedBeforeOutput: 0,
  failedAfterOutput: 0,
  deadlineCut: 0,
});

/**
 * What one bucket holds per (miner, model), in storage order: prompt,
 * completion, requests (credited ones: completed or cancelled), then the
 * outcome counts served, failed before output, failed after output, cut,
 * then the paid part of the tokens: paid prompt, paid completion (the
 * tokens of events with `paid: true`, already inside prompt and completion).
 * Buckets written before outcomes were kept have the first three only;
 * buckets written before paid tokens were kept have seven (0 paid).
 */
export type Counts = [number, number, number, number, number, number, number, number, number];

/** Number of values in Counts. */
export const COUNT_FIELDS = 9;

/** Index of the paid prompt tokens in Counts. */
export const PAID_PROMPT_AT = 7;
/** Index of the paid completion tokens in Counts. */
export const PAID_COMPLETION_AT = 8;

/** The one-letter code of an outcome in the Redis record script's event encoding. */
export const OUTCOME_CODE: Readonly<Record<UsageOutcome, string>> = Object.freeze({
  completed: "c",
  cancelled: "x",
  failed: "f",
  failed_early: "e",
  cut: "t",
});

/** What one event adds to its bucket. */
export function countsOf(e: UsageEvent): Counts {
  const o = e.outcome;
  const credited = o === "completed" || o === "cancelled" ? 1 : 0;
  return [
    e.promptTokens,
    e.completionTokens,
    credited,
    o === "completed" ? 1 : 0,
    o === "failed_early" ? 1 : 0,
    o === "failed" ? 1 : 0,
    o === "cut" ? 1 : 0,
    e.paid === true ? e.promptTokens : 0,
    e.paid === true ? e.completionTokens : 0,
  ];
}

/** Adds `b` into `a` (in place). */
export function addCounts(a: Counts, b: readonly number[]): Counts {
  for (let i = 0; i < COUNT_FIELDS; i++) a[i] = (a[i] as number) + (b[i] ?? 0);
  return a;
}

/** Counts from a stored row of 3 or 7 (older buckets) or 9 numbers. */
export function countsFrom(row: readonly number[]): Counts {
  return addCounts([0, 0, 0, 0, 0, 0, 0, 0, 0], row);
}

/** The paid prompt and completion tokens of a Counts (0 in rows written before they were kept). */
export function paidOf(c: readonly number[]): { paidPromptTokens: number; paidCompletionTokens: number } {
  return { paidPromptTokens: c[PAID_PROMPT_AT] ?? 0, paidCompletionTokens: c[PAID_COMPLETION_AT] ?? 0 };
}

/** The outcome part of a Counts. */
export function outcomesOf(c: readonly number[]): OutcomeCounts {
  return {
    served: c[3] ?? 0,
    failedBeforeOutput: c[4] ?? 0,
    failedAfterOutput: c[5] ?? 0,
    deadlineCut: c[6] ?? 0,
  };
}
