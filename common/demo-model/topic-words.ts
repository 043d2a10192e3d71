/**
 * Which topic a conversation is about: a bag-of-words naive Bayes classifier
 * over its content words, used to weight the topics of the mixture.
 *
 * Any weights that depend only on the context and sum to one keep the
 * mixture a normalised distribution, so the weights need not be the n-gram
 * posterior — and that posterior is a poor classifier on a corpus this
 * small: a topic that never saw a history backs off generously while one
 * that did is confident, so surprising phrasing decides the topic. Content
 * words are what a topic is about. A content word is a token whose text,
 * trimmed, is at least four letters and not a chat role; case is folded, so
 * ` Stars` and ` stars` count as one word. Each topic's word probabilities
 * are Dirichlet-smoothed toward the whole corpus (`(c + μ·P(w)) / (N + μ)`),
 * so one rare word moves the weights a little and several move them a lot.
 */

/** μ of the Dirichlet smoothing: how many corpus-wide words a topic's counts are blended with. */
export const TOPIC_SMOOTHING = 200;

const ROLE_WORDS = new Set(["user", "assistant", "system"]);

/** The case-folded content word of a token's text, or undefined when it is not one. */
export function contentWord(text: string): string | undefined {
  const t = text.trim();
  if (!/^[A-Za-z]{4,}$/.test(t)) return undefined;
  const w = t.toLowerCase();
  return ROLE_WORDS.has(w) ? undefined : w;
}

/** Word counts per topic and over the corpus. */
export interface TopicWords {
  /** Per topic: word → occurrences. */
  readonly counts: readonly ReadonlyMap<string, number>[];
  /** Per topic: content words in total. */
  readonly totals: readonly number[];
  /** Word → occurrences in the whole corpus. */
  readonly corpus: ReadonlyMap<string, number>;
  /** Content words in the whole corpus. */
  readonly corpusTotal: number;
}

/** Counts the content words of each topic's texts (token texts, in order). */
export function countTopicWords(topics: readonly (readonly string[])[]): TopicWords {
  const corpus = new Map<string, number>();
  let corpusTotal = 0;
  const counts: Map<string, number>[] = [];
  const totals: number[] = [];
  for (const tokens of topics) {
    const c = new Map<string, number>();
    let n = 0;
    for (const text of tokens) {
      const w = contentWord(text);
      if (w === undefined) continue;
      c.set(w, (c.get(w) ?? 0) + 1);
      corpus.set(w, (corpus.get(w) ?? 0) + 1);
      n++;
      corpusTotal++;
    }
    counts.push(c);
    totals.push(n);
  }
  return { counts, totals, corpus, corpusTotal };
}

/**
 * What one token adds to each topic's log-score: `log P_t(word)`, or nothing
 * (undefined) when the token is not a content word of the corpus — a word no
 * topic has seen says nothing about the topic.
 */
export function wordEvidence(words: TopicWords, text: string): Float64Array | undefined {
  const w = contentWord(text);
  const inCorpus = w === undefined ? undefined : words.corpus.get(w);
  if (w === undefined || inCorpus === undefined) return undefined;
  const background = inCorpus / words.corpusTotal;
  const out = new Float64Array(words.counts.length);
  for (let t = 0; t < out.length; t++) {
    const c = words.counts[t]?.get(w) ?? 0;
    out[t] = Math.log((c + TOPIC_SMOOTHING * background) / ((words.totals[t] as number) + TOPIC_SMOOTHING));
  }
  return out;
}

/** Softmax of log-scores: the topic weights (uniform when every score is equal). */
export function softmax(scores: Float64Array): Float64Array {
  const out = new Float64Array(scores.length);
  const max = Math.max(...scores);
  let z = 0;
  for (let t = 0; t < out.length; t++) {
    out[t] = Math.exp((scores[t] as number) - max);
    z += out[t] as number;
  }
  for (let t = 0; t < out.length; t++) out[t] = (out[t] as number) / z;
  return out;
}
