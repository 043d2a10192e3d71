/**
 * The demo model's probabilities: a mixture of per-topic trigram models.
 *
 * Each topic's model is a chain of levels with scaled Witten-Bell weights:
 * the topic's trigram → the topic's bigram → the whole corpus's trigram →
 * bigram → unigram → an add-k unigram over the *whole* vocabulary. A level
 * whose history was seen keeps most of the mass for what followed it there
 * and passes the rest down; an unseen history passes everything down. So a
 * topic that never saw the current words still continues fluently from the
 * rest of the corpus, every token id — even one the corpus never used — has
 * a small, non-zero probability, and every level is a normalised
 * distribution.
 *
 * The topics are weighted by what the context is about (topic-words.ts), so
 * a question about bread is answered from the cooking pages and one about
 * tides from the sea's, and a stop hazard after sentence ends makes answers
 * end. Every step is a normalised distribution that depends only on the
 * tokens before it — a proper sequential model `P(w | x₁…xₙ)`, which is what
 * lets a judge score any text under it.
 */
import { TokenDistribution, type Vocabulary, vocabularySize } from "./distribution.js";
import { type Followers, type NgramCounts, type TopicCounts, trigramKey } from "./ngram-counts.js";

/**
 * Add-k constant of the last level. Small, so the ~200k ids the corpus never
 * used share a tiny part of its mass: sampling one is rare, and text made of
 * them scores far below the model's own answers.
 */
export const ADD_K = 1e-5;

/**
 * Scale of the Witten-Bell back-off mass: a history seen `c` times with `T`
 * distinct followers passes `β·T / (c + β·T)` down a level. Plain
 * Witten-Bell (β = 1) passes half the mass of every history seen once, which
 * on a corpus this small turns sampled text into word salad.
 */
export const BACKOFF_SCALE = 0.1;

/**
 * After a token that ends a sentence, end-of-text gets this share of the
 * mass on top of what the corpus says (`(1 − q)·P + q·[end-of-text]`), so
 * answers stop after a sentence or two instead of running on to
 * `max_tokens`; greedy decoding stops unless one continuation is very likely.
 */
export const STOP_HAZARD = 0.35;

/** The counts and the vocabulary they index. */
export interface MixtureModel {
  readonly counts: NgramCounts;
  readonly vocabulary: Vocabulary;
  /** By known index: 1 when the token ends a sentence (its text ends with `.`, `!` or `?`). */
  readonly sentenceEnds: Uint8Array;
  /** By known index: what the token adds to each topic's log-score (undefined: not a content word). */
  readonly evidence: readonly (Float64Array | undefined)[];
}

/** Known indexes of the two previous tokens; -1 when absent or not known. */
export interface History {
  readonly u: number;
  readonly v: number;
}

function unigramDenominator(m: MixtureModel): number {
  return m.counts.total + ADD_K * vocabularySize(m.vocabulary);
}

/** A topic's own levels for a history, most specific first (undefined when unseen). */
function ngramLevels(
  m: MixtureModel,
  c: TopicCounts,
  h: History,
): [Followers | undefined, Followers | undefined] {
  const bi = h.v < 0 ? undefined : c.bigram.get(h.v);
  const tri = h.u < 0 || h.v < 0 ? undefined : c.trigram.get(trigramKey(m.counts, h.u, h.v));
  return [tri, bi];
}

/** The background's levels: the whole corpus's trigram, bigram and unigram. */
function backgroundLevels(m: MixtureModel, h: History): (Followers | undefined)[] {
  return [...ngramLevels(m, m.counts.background, h), m.counts.background.unigram];
}

/** A level's denominator: its count plus the back-off mass. */
function levelDenominator(f: Followers): number {
  return f.total + BACKOFF_SCALE * f.counts.size;
}

/** Interpolates `p` (the level below) into the levels, least specific first. */
function climb(levels: readonly (Followers | undefined)[], w: number, below: number): number {
  let p = below;
  for (let i = levels.length - 1; i >= 0; i--) {
    const f = levels[i];
    if (f === undefined) continue;
    const n = w < 0 ? 0 : (f.counts.get(w) ?? 0);
    p = (n + BACKOFF_SCALE * f.counts.size * p) / levelDenominator(f);
  }
  return p;
}

/** Adds the mass `carry` keeps at each level to `probs`; returns what falls through all of them. */
function descend(levels: readonly (Followers | undefined)[], carry: number, probs: Float64Array): number {
  let rest = carry;
  for (const f of levels) {
    if (f === undefined) continue;
    const denom = levelDenominator(f);
    const share = rest / denom;
    for (const [w, n] of f.counts) probs[w] = (probs[w] as number) + share * n;
    rest *= (BACKOFF_SCALE * f.counts.size) / denom;
  }
  return rest;
}

/** The stop hazard after history `h` (0 unless the last token ends a sentence). */
function hazard(m: MixtureModel, h: History): number {
  return h.v >= 0 && m.sentenceEnds[h.v] === 1 ? STOP_HAZARD : 0;
}

/** Probability of known index `w` (-1: an unseen id) for topic weights summing to 1. */
export function tokenProb(m: MixtureModel, weights: Float64Array, h: History, w: number): number {
  const base = ((w < 0 ? 0 : (m.counts.unigram[w] as number)) + ADD_K) / unigramDenominator(m);
  const background = climb(backgroundLevels(m, h), w, base);
  let p = 0;
  for (let t = 0; t < weights.length; t++) {
    const weight = weights[t] as number;
    const topic = m.counts.topics[t];
    if (weight > 0 && topic !== undefined) p += weight * climb(ngramLevels(m, topic, h), w, background);
  }
  const q = hazard(m, h);
  return (1 - q) * p + (w >= 0 && w === m.counts.indexOf.get(m.vocabulary.eosId) ? q : 0);
}

/** The whole distribution of the next token for topic weights summing to 1. */
export function mixtureDistribution(m: MixtureModel, weights: Float64Array, h: History): TokenDistribution {
  const q = hazard(m, h);
  const probs = new Float64Array(m.counts.unigram.length);
  // The background levels are shared: gather what every topic passes down, then descend once.
  let toBackground = 0;
  for (let t = 0; t < weights.length; t++) {
    const topic = m.counts.topics[t];
    const carry = (1 - q) * (weights[t] as number);
    if (carry > 0 && topic !== undefined) toBackground += descend(ngramLevels(m, topic, h), carry, probs);
  }
  const scale = descend(backgroundLevels(m, h), toBackground, probs) / unigramDenominator(m);
  const unigram = m.counts.unigram;
  for (let i = 0; i < probs.length; i++)
    probs[i] = (probs[i] as number) + scale * ((unigram[i] as number) + ADD_K);
  const eos = m.counts.indexOf.get(m.vocabulary.eosId);
  if (eos !== undefined) probs[eos] = (probs[eos] as number) + q;
  return new TokenDistribution(m.vocabulary, probs, scale * ADD_K);
}
