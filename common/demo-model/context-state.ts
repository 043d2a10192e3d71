/**
 * The model's state after reading a context, and the last two touches on its
 * distribution: topic weights from the content words read so far, and a
 * repetition penalty.
 *
 * The penalty: a token that would repeat a trigram already in the context
 * keeps only {@link REPEAT_PENALTY} of its probability and the distribution
 * is renormalised. N-gram models left alone fall into loops ("its wind, its
 * wind, …"), greedy decoding above all; with the penalty inside the model
 * (not bolted onto decoding) an answer and its score still agree exactly.
 */
import { TokenDistribution } from "./distribution.js";
import { type History, type MixtureModel, mixtureDistribution, tokenProb } from "./ngram-mixture.js";
import { softmax } from "./topic-words.js";

/** Share of its probability a token keeps when it would repeat a trigram of the context. */
export const REPEAT_PENALTY = 0.02;

/**
 * Reads a context one token at a time: the last two tokens, each topic's
 * log-score, and which tokens followed each two-token history. Feeding
 * tokens one at a time keeps generation and scoring linear in the length of
 * the text.
 */
export class ContextState {
  readonly #model: MixtureModel;
  readonly #scores: Float64Array;
  /** `u · known + v` → known indexes that followed (u, v) in the context. */
  readonly #seen = new Map<number, Set<number>>();
  #u = -1;
  #v = -1;

  constructor(model: MixtureModel) {
    this.#model = model;
    this.#scores = new Float64Array(model.counts.topics.length);
  }

  /** The history the next token is predicted from. */
  get history(): History {
    return { u: this.#u, v: this.#v };
  }

  /** The topic weights: a softmax of the scores (uniform before any content word). */
  posterior(): Float64Array {
    return softmax(this.#scores);
  }

  /** The distribution of the next token. */
  distribution(): TokenDistribution {
    const d = mixtureDistribution(this.#model, this.posterior(), this.history);
    const repeats = this.#repeats();
    if (repeats === undefined) return d;
    const probs = Float64Array.from(d.known);
    let removed = 0;
    for (const w of repeats) {
      removed += (1 - REPEAT_PENALTY) * (probs[w] as number);
      probs[w] = REPEAT_PENALTY * (probs[w] as number);
    }
    const z = 1 - removed;
    for (let i = 0; i < probs.length; i++) probs[i] = (probs[i] as number) / z;
    return new TokenDistribution(d.vocabulary, probs, d.unseenEach / z);
  }

  /** Probability that the next token is `id` (cheaper than the whole distribution). */
  prob(id: number): number {
    const m = this.#model;
    const weights = this.posterior();
    const h = this.history;
    const w = m.counts.indexOf.get(id) ?? -1;
    const p = tokenProb(m, weights, h, w);
    const repeats = this.#repeats();
    if (repeats === undefined) return p;
    let removed = 0;
    for (const r of repeats) removed += (1 - REPEAT_PENALTY) * tokenProb(m, weights, h, r);
    return ((repeats.has(w) ? REPEAT_PENALTY : 1) * p) / (1 - removed);
  }

  /** Reads one more token (a vocabulary id; the caller checks it). */
  push(id: number): void {
    const m = this.#model;
    const w = m.counts.indexOf.get(id) ?? -1;
    const e = w < 0 ? undefined : m.evidence[w];
    if (e !== undefined) {
      for (let t = 0; t < e.length; t++) this.#scores[t] = (this.#scores[t] as number) + (e[t] as number);
    }
    const key = this.#historyKey();
    if (key !== undefined && w >= 0) {
      const set = this.#seen.get(key) ?? new Set<number>();
      set.add(w);
      this.#seen.set(key, set);
    }
    this.#u = this.#v;
    this.#v = w;
  }

  #historyKey(): number | undefined {
    return this.#u < 0 || this.#v < 0 ? undefined : this.#u * this.#model.counts.known.length + this.#v;
  }

  /** Known indexes that would repeat a trigram of the context (undefined: none). */
  #repeats(): ReadonlySet<number> | undefined {
    const key = this.#historyKey();
    return key === undefined ? undefined : this.#seen.get(key);
  }
}
