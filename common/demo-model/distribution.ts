/**
 * A probability distribution over the model's whole vocabulary, stored
 * compactly: one probability per *known* token (the ids of the corpus and
 * end-of-text), and one shared probability for each of the other ids, which
 * the model has never seen and can tell nothing apart. Known tokens always
 * carry at least their share of smoothing mass, so an unseen id never
 * outranks a known one.
 */

/** The model's vocabulary: every ordinary token id plus end-of-text. */
export interface Vocabulary {
  /** Ids that occur in the corpus, end-of-text included, ascending. */
  readonly known: Int32Array;
  /** Id → index in `known`. */
  readonly indexOf: ReadonlyMap<number, number>;
  /** Ordinary ids are `0 … regularTokens - 1`. */
  readonly regularTokens: number;
  /** End-of-text id. */
  readonly eosId: number;
}

/** A token and its natural-log probability. */
export interface RankedToken {
  readonly id: number;
  readonly logprob: number;
}

/** Size of a vocabulary: the ordinary tokens plus end-of-text. */
export function vocabularySize(v: Vocabulary): number {
  return v.regularTokens + 1;
}

/** True when `id` belongs to the vocabulary. */
export function inVocabulary(v: Vocabulary, id: number): boolean {
  return Number.isInteger(id) && ((id >= 0 && id < v.regularTokens) || id === v.eosId);
}

/** The `j`-th (from 0) ordinary id that is not known, in ascending order. */
export function nthUnseenId(v: Vocabulary, j: number): number {
  let id = j;
  // Each known id at or below the candidate pushes it one further.
  for (const k of v.known) {
    if (k > id || k >= v.regularTokens) break;
    id++;
  }
  return id;
}

/** A normalised distribution over a vocabulary. */
export class TokenDistribution {
  readonly vocabulary: Vocabulary;
  /** Probability of each known token, by index in `vocabulary.known`. */
  readonly known: Float64Array;
  /** Probability of each id that is not known. */
  readonly unseenEach: number;

  constructor(vocabulary: Vocabulary, known: Float64Array, unseenEach: number) {
    this.vocabulary = vocabulary;
    this.known = known;
    this.unseenEach = unseenEach;
  }

  /** Number of vocabulary ids that are not known. */
  get unseenCount(): number {
    return vocabularySize(this.vocabulary) - this.vocabulary.known.length;
  }

  /** Probability of one id; throws a RangeError for an id outside the vocabulary. */
  prob(id: number): number {
    if (!inVocabulary(this.vocabulary, id)) throw new RangeError(`token id ${id} is not in the vocabulary`);
    const i = this.vocabulary.indexOf.get(id);
    return i === undefined ? this.unseenEach : (this.known[i] as number);
  }

  /** Natural-log probability of one id. */
  logprob(id: number): number {
    return Math.log(this.prob(id));
  }

  /** Sum over the whole vocabulary (1 up to rounding). */
  total(): number {
    let s = this.unseenEach * this.unseenCount;
    for (const p of this.known) s += p;
    return s;
  }

  /** The `k` most likely ids, most likely first; equal probabilities in ascending id order. */
  top(k: number): RankedToken[] {
    if (k <= 0) return [];
    const best: number[] = [];
    const p = this.known;
    for (let i = 0; i < p.length; i++) {
      const pi = p[i] as number;
      if (best.length === k && pi <= (p[best[k - 1] as number] as number)) continue;
      let at = best.length;
      while (at > 0 && pi > (p[best[at - 1] as number] as number)) at--;
      best.splice(at, 0, i);
      if (best.length > k) best.pop();
    }
    const out = best.map((i) => ({
      id: this.vocabulary.known[i] as number,
      logprob: Math.log(p[i] as number),
    }));
    for (let j = 0; out.length < k && j < this.unseenCount; j++) {
      out.push({ id: nthUnseenId(this.vocabulary, j), logprob: Math.log(this.unseenEach) });
    }
    return out;
  }

  /** The most likely id (the lowest id among equals). */
  argmax(): number {
    const [first] = this.top(1);
    if (first === undefined) throw new Error("empty vocabulary");
    return first.id;
  }

  /**
   * Draws one id with probabilities proportional to `p^(1/temperature)`
   * (temperature 0 or below: the argmax). `random` returns uniform numbers in
   * [0, 1); one draw picks the token, a second one picks which unseen id when
   * the draw lands on the unseen part.
   */
  sample(temperature: number, random: () => number): number {
    if (!(temperature > 0)) return this.argmax();
    const p = this.known;
    // Log space: p^(1/T) underflows for small temperatures.
    const unseenLog = Math.log(this.unseenEach) / temperature + Math.log(this.unseenCount || 1);
    let max = this.unseenCount > 0 ? unseenLog : Number.NEGATIVE_INFINITY;
    for (const pi of p) max = Math.max(max, Math.log(pi) / temperature);
    const weights = new Float64Array(p.length);
    let z = 0;
    for (let i = 0; i < p.length; i++) {
      const w = Math.exp(Math.log(p[i] as number) / temperature - max);
      weights[i] = w;
      z += w;
    }
    const unseenWeight = this.unseenCount > 0 ? Math.exp(unseenLog - max) : 0;
    let target = random() * (z + unseenWeight);
    for (let i = 0; i < weights.length; i++) {
      target -= weights[i] as number;
      if (target < 0) return this.vocabulary.known[i] as number;
    }
    if (this.unseenCount === 0) return this.vocabulary.known[p.length - 1] as number;
    return nthUnseenId(
      this.vocabulary,
      Math.min(this.unseenCount - 1, Math.floor(random() * this.unseenCount)),
    );
  }
}
