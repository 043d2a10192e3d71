/**
 * Judging answers without a reference server: the miners serving the same
 * model get the same audit prompt (temperature 0, fixed seed), and an answer
 * far from what the others said is taken as not coming from that model.
 *
 * Each answer's agreement is the (upper) median of its similarities to the
 * other answers (text-similarity.ts), and the group's consensus is the
 * (upper) median of those. A median, not a maximum, so two colluding miners
 * cannot vouch for each other against an honest majority; the upper median,
 * so that in a group of three the two that agree both count as agreeing.
 *
 * - Fewer than {@link AgreementPolicy.minAnswers} answers: unverifiable.
 * - Consensus below `consensus`: nobody agrees with anybody (a model that is
 *   not deterministic, or no honest majority): unverifiable, not failed.
 * - Otherwise an answer fails when its agreement is below the absolute
 *   `floor` and also more than `margin` below the consensus; every other
 *   answer passes. Both conditions must hold, so honest answers that
 *   diverge part-way (another GPU or batch size flips a near-tie) and still
 *   share the topic's phrasing are not failed.
 *
 * The rule assumes an honest majority among the miners serving a model; a
 * majority of copies of the same wrong answer wins. A reference server
 * (reference-judge.ts) does not need that assumption.
 */
import { fmt, type Judgement, unverifiable } from "./judgement.js";
import { textTokens, tokenSimilarity } from "./text-similarity.js";

/** Thresholds of the agreement rule, each a similarity in [0, 1] except `minAnswers`. */
export interface AgreementPolicy {
  /** Fewest answers (miners) that can judge each other; at least 3. */
  readonly minAnswers: number;
  /** Consensus below this means the group cannot judge anybody. */
  readonly consensus: number;
  /** An answer must be below this absolute similarity to fail... */
  readonly floor: number;
  /** ...and this far below the consensus. */
  readonly margin: number;
}

/**
 * Defaults: identical answers score 1 and near-identical ones about 0.9;
 * an unrelated text of the same length typically scores under 0.1 (shared
 * common bigrams only).
 */
export const DEFAULT_AGREEMENT_POLICY: AgreementPolicy = Object.freeze({
  minAnswers: 3,
  consensus: 0.5,
  floor: 0.25,
  margin: 0.3,
});

/** One miner's answer to the audit prompt. */
export interface PeerAnswer {
  readonly hotkey: string;
  readonly text: string;
}

/** The agreement judgement of one answer, with its numbers. */
export interface AgreementJudgement extends Judgement {
  /** The answer's agreement with the others (NaN when too few answers). */
  readonly agreement: number;
  /** The group's consensus (NaN when too few answers). */
  readonly consensus: number;
}

/** The upper median: the middle value, or the larger of the two middle ones. */
export function upperMedian(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/**
 * Judges every answer of one audit prompt for one model. Answers are keyed
 * by hotkey (a hotkey answering twice is counted once: its first answer),
 * so one miner cannot outvote the others with several tunnels.
 */
export function judgeAgreement(
  answers: readonly PeerAnswer[],
  policy: AgreementPolicy = DEFAULT_AGREEMENT_POLICY,
): Map<string, AgreementJudgement> {
  return judgeBySimilarity(
    answers.map((a) => ({ hotkey: a.hotkey, value: a.text })),
    textTokens,
    tokenSimilarity,
    policy,
  );
}

/**
 * The agreement rule over any kind of answer: `prepare` turns each answer
 * into what `similarity` compares (a similarity in [0, 1], symmetric).
 * Keyed by hotkey like {@link judgeAgreement}.
 */
export function judgeBySimilarity<A, P>(
  answers: readonly { readonly hotkey: string; readonly value: A }[],
  prepare: (answer: A) => P,
  similarity: (a: P, b: P) => number,
  policy: AgreementPolicy,
): Map<string, AgreementJudgement> {
  const byHotkey = new Map<string, P>();
  for (const a of answers) if (!byHotkey.has(a.hotkey)) byHotkey.set(a.hotkey, prepare(a.value));
  const hotkeys = [...byHotkey.keys()];
  const prepared = [...byHotkey.values()];
  const out = new Map<string, AgreementJudgement>();
  const n = hotkeys.length;
  if (n < Math.max(3, policy.minAnswers)) {
    for (const hk of hotkeys) {
      out.set(hk, {
        agreement: Number.NaN,
        consensus: Number.NaN,
        ...unverifiable(`only ${n} answers to compare (need ${Math.max(3, policy.minAnswers)})`),
      });
    }
    return out;
  }
  const sim: number[][] = Array.from({ length: n }, () => new Array<number>(n).fill(1));
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const s = similarity(prepared[i] as P, prepared[j] as P);
      (sim[i] as number[])[j] = s;
      (sim[j] as number[])[i] = s;
    }
  }
  const agreement = sim.map((row, i) => upperMedian(row.filter((_, j) => j !== i)));
  const consensus = upperMedian(agreement);
  hotkeys.forEach((hk, i) => {
    const a = agreement[i] as number;
    const numbers = `agreement ${fmt(a)}, consensus ${fmt(consensus)} of ${n} answers`;
    let j: Judgement;
    if (consensus < policy.consensus) {
      j = unverifiable(`no consensus: ${numbers} < ${fmt(policy.consensus)}`);
    } else if (a < policy.floor && a < consensus - policy.margin) {
      j = { outcome: "failed", detail: `far from the other answers: ${numbers}` };
    } else {
      j = { outcome: "passed", detail: numbers };
    }
    out.set(hk, { agreement: a, consensus, ...j });
  });
  return out;
}
