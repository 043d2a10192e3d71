// What probing costs per miner per day, from per-probe figures: pure
// arithmetic, so the totals in the report can be checked by hand (and by
// test/unit/bench-audit.test.ts). Each validator probes each miner on its own
// schedule, so every figure here is per validator; a miner probed by V
// validators carries V times the miner-side figures.

/** Per-probe and per-audit figures the daily totals are made of. */
export interface PerDayInputs {
  /** Mean time between two probes of one miner (`--probe-interval-s`). */
  readonly probeIntervalS: number;
  /** Share of probes that are audits (`--verify-share`). */
  readonly verifyShare: number;
  /** Share of audits carrying a prompt with one right answer (judged by grading). */
  readonly gradedShare: number;
  /** Content tokens a liveness probe waits for before it is cut. */
  readonly livenessCompletionTokens: number;
  /** Mean prompt tokens of a liveness probe / of an audit (the router's count). */
  readonly livenessPromptTokens: number;
  readonly auditPromptTokens: number;
  /** Mean answer tokens of an audit as a model writes it, and its `max_tokens` bound (the router's count). */
  readonly auditAnswerTokens: number;
  readonly auditMaxTokens: number;
  /** Tokens the reference scores per reference-judged audit, and per graded case (its own answer). */
  readonly referenceTokensPerAudit: number;
  readonly referenceTokensPerGraded: number;
  /** Reference time per reference-judged audit and per graded case, ms. */
  readonly referenceMsPerAudit: number;
  readonly referenceMsPerGraded: number;
  /** The validator's CPU per probe before it is sent, ms. */
  readonly validatorCpuMsPerProbe: number;
}

/** Daily totals for one miner, as probed by one validator. */
export interface PerDay {
  readonly probes: number;
  readonly audits: number;
  readonly liveness: number;
  /** Tokens the miner processes for liveness probes (prompt + the cut). */
  readonly livenessTokens: number;
  /** Tokens the miner processes for audits: answers as written / at their `max_tokens` bound. */
  readonly auditTokensDemo: number;
  readonly auditTokensBound: number;
  /** Tokens and busy seconds the validator's reference spends on this miner. */
  readonly referenceTokens: number;
  readonly referenceSeconds: number;
  readonly validatorCpuSeconds: number;
}

const DAY_S = 86_400;

/**
 * Daily totals. A reference-judged audit costs the reference one scoring of
 * the miner's answer; a graded one costs it one answer of its own per case,
 * counted here as if the miner were alone on its model (the most it costs).
 */
export function perDay(i: PerDayInputs): PerDay {
  const probes = DAY_S / i.probeIntervalS;
  const audits = probes * i.verifyShare;
  const liveness = probes - audits;
  const g = i.gradedShare;
  return {
    probes,
    audits,
    liveness,
    livenessTokens: liveness * (i.livenessPromptTokens + i.livenessCompletionTokens),
    auditTokensDemo: audits * (i.auditPromptTokens + i.auditAnswerTokens),
    auditTokensBound: audits * (i.auditPromptTokens + i.auditMaxTokens),
    referenceTokens: audits * ((1 - g) * i.referenceTokensPerAudit + g * i.referenceTokensPerGraded),
    referenceSeconds: (audits * ((1 - g) * i.referenceMsPerAudit + g * i.referenceMsPerGraded)) / 1000,
    validatorCpuSeconds: (probes * i.validatorCpuMsPerProbe) / 1000,
  };
}
