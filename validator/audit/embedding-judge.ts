/**
 * Judging the vectors of an embeddings audit. An audit sent as embeddings
 * carries its messages as inputs (probe.proto), and
 * an embedding is a deterministic function of its input under the model's
 * weights: another GPU, batch size or precision moves it only slightly. So
 * two servers of the same model agree to a cosine near 1 on every input,
 * while vectors of another model, random ones, or a hash of the words do not.
 *
 * Two vector sets are compared input by input, and their similarity is the
 * lowest cosine (negative counts as 0): a miner that answers some inputs
 * honestly and fills the rest cannot hide the filled ones in an average.
 * Sets of different sizes or vectors of different lengths have similarity 0
 * (another model, or an answer to other inputs).
 *
 * - With a reference server of the same weights (`--reference`), each miner
 *   is judged against the reference's vectors for the same inputs: passed at
 *   {@link EmbeddingReferencePolicy.pass} or above, failed below `fail`,
 *   unverifiable in between (quantised weights may land there).
 * - Without one, by the agreement rule of agreement-judge.ts over the miners
 *   that embedded the same inputs, with vector similarity in place of text
 *   similarity.
 */
import { type AgreementJudgement, type AgreementPolicy, judgeBySimilarity } from "./agreement-judge.js";
import { fmt, type Judgement } from "./judgement.js";

/** The vectors of one answer, in input order. */
export type VectorSet = readonly (readonly number[])[];

/** Marks of the reference rule, each a cosine. */
export interface EmbeddingReferencePolicy {
  /** Lowest cosine to the reference, on every input, that passes. */
  readonly pass: number;
  /** A lowest cosine below this fails. */
  readonly fail: number;
}

/**
 * Defaults. Servers of the same weights agree far above `pass` (float16
 * against float32 moves a cosine in the fourth decimal); vectors of
 * unrelated models, or random ones, sit near 0.
 */
export const DEFAULT_EMBEDDING_REFERENCE_POLICY: EmbeddingReferencePolicy = Object.freeze({
  pass: 0.98,
  fail: 0.9,
});

/** Defaults of the agreement rule for vectors: honest peers agree near 1. */
export const DEFAULT_EMBEDDING_AGREEMENT_POLICY: AgreementPolicy = Object.freeze({
  minAnswers: 3,
  consensus: 0.95,
  floor: 0.9,
  margin: 0.05,
});

/** The cosine of two vectors; NaN when their lengths differ or one has length 0. */
export function cosine(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length || a.length === 0) return Number.NaN;
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? Number.NaN : dot / Math.sqrt(na * nb);
}

/**
 * The similarity of two answers to the same inputs: the lowest cosine over
 * the inputs, clamped to [0, 1]; 0 when the sets differ in size, a vector in
 * length, or a vector has no direction.
 */
export function vectorSetSimilarity(a: VectorSet, b: VectorSet): number {
  if (a.length !== b.length || a.length === 0) return 0;
  let low = 1;
  for (let i = 0; i < a.length; i++) {
    const c = cosine(a[i] as number[], b[i] as number[]);
    if (!Number.isFinite(c)) return 0;
    low = Math.min(low, c);
  }
  return Math.max(0, low);
}

/** Judges one miner's vectors against the reference's vectors for the same inputs. */
export function judgeEmbeddingsByReference(
  answer: VectorSet,
  reference: VectorSet,
  policy: EmbeddingReferencePolicy = DEFAULT_EMBEDDING_REFERENCE_POLICY,
): Judgement {
  if (answer.length !== reference.length) {
    return { outcome: "failed", detail: `${answer.length} vectors for ${reference.length} inputs` };
  }
  const dims = answer.find((v, i) => v.length !== reference[i]?.length);
  if (dims !== undefined) {
    const theirs = reference[0]?.length ?? 0;
    return { outcome: "failed", detail: `${dims.length} dimensions, the reference's ${theirs}` };
  }
  const low = vectorSetSimilarity(answer, reference);
  const numbers = `lowest cosine to the reference ${fmt(low, 3)} over ${answer.length} inputs`;
  if (low >= policy.pass) return { outcome: "passed", detail: numbers };
  if (low < policy.fail) return { outcome: "failed", detail: `${numbers} < ${fmt(policy.fail, 3)}` };
  return { outcome: "unverifiable", detail: `${numbers}, between ${policy.fail} and ${policy.pass}` };
}

/** One miner's vectors for the case's inputs. */
export interface PeerVectors {
  readonly hotkey: string;
  readonly vectors: VectorSet;
}

/** Judges the vectors of the miners that embedded the same inputs by their agreement. */
export function judgeEmbeddingAgreement(
  answers: readonly PeerVectors[],
  policy: AgreementPolicy = DEFAULT_EMBEDDING_AGREEMENT_POLICY,
): Map<string, AgreementJudgement> {
  return judgeBySimilarity(
    answers.map((a) => ({ hotkey: a.hotkey, value: a.vectors })),
    (v) => v,
    vectorSetSimilarity,
    policy,
  );
}
