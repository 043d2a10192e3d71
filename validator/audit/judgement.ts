/**
 * What every audit judge returns. An audit is one deterministic probe whose
 * answer a judge checks against the model the miner claims to serve; the
 * judges differ in what they compare against (a reference server, the other
 * miners serving the model, or a known right answer), not in what they say.
 */

/**
 * How one audit came out: `passed` (the answer is what the model would
 * say), `failed` (it is not), or `unverifiable` (the judge could not tell:
 * reference down, too few peers, a prompt the model itself cannot answer).
 * Only `passed` and `failed` are conclusive; an unverifiable audit never
 * changes a verdict.
 */
export type AuditOutcome = "passed" | "failed" | "unverifiable";

/** Which judge decided an audit. */
export type JudgeName = "reference" | "agreement" | "graded";

/** One judge's decision on one answer, with the numbers behind it for logs and operators. */
export interface Judgement {
  readonly outcome: AuditOutcome;
  /** Short and factual, e.g. "mean logprob -7.90 < -1.60"; carries no secrets. */
  readonly detail: string;
}

/** An unverifiable judgement with its reason. */
export function unverifiable(detail: string): Judgement {
  return { outcome: "unverifiable", detail };
}

/** A number for a detail string: fixed digits, or its name when it is not finite. */
export function fmt(n: number, digits = 2): string {
  return Number.isFinite(n) ? n.toFixed(digits) : String(n);
}
