/**
 * Counting the corpus: unigram, bigram and trigram counts per topic and over
 * the whole text. Counts are keyed by the token's index in the
 * model's *known* list (the ids that occur in the corpus, plus end-of-text),
 * so the dense parts of a distribution are small arrays, not arrays of the
 * whole 200k-token vocabulary.
 */

/** How often each token followed one history. */
export interface Followers {
  /** Times the history was followed by anything. */
  readonly total: number;
  /** Known index of the next token → times it followed. Its size is the number of distinct followers. */
  readonly counts: ReadonlyMap<number, number>;
}

/** Bigram and trigram counts of one topic. */
export interface TopicCounts {
  readonly name: string;
  /** Every token of the topic (the empty history). */
  readonly unigram: Followers;
  /** Previous token's known index → followers. */
  readonly bigram: ReadonlyMap<number, Followers>;
  /** `trigramKey(u, v)` → followers. */
  readonly trigram: ReadonlyMap<number, Followers>;
}

/** Everything the model knows about its corpus. */
export interface NgramCounts {
  /** Vocabulary ids that occur in the corpus (end-of-text included), ascending. */
  readonly known: Int32Array;
  /** Vocabulary id → index in `known`. */
  readonly indexOf: ReadonlyMap<number, number>;
  /** Occurrences of each known token in the whole corpus, by known index. */
  readonly unigram: Float64Array;
  /** Tokens in the corpus (the sum of `unigram`). */
  readonly total: number;
  readonly topics: readonly TopicCounts[];
  /** The whole corpus counted as one more topic: the background every topic leans on. */
  readonly background: TopicCounts;
}

/** One topic's documents as token ids, each ending with end-of-text. */
export interface TopicTokens {
  readonly name: string;
  readonly documents: readonly (readonly number[])[];
}

/** The map key of the history (u, v), both known indexes. */
export function trigramKey(counts: Pick<NgramCounts, "known">, u: number, v: number): number {
  return u * counts.known.length + v;
}

interface MutableFollowers {
  total: number;
  counts: Map<number, number>;
}

function bump(map: Map<number, MutableFollowers>, key: number, next: number) {
  let f = map.get(key);
  if (f === undefined) {
    f = { total: 0, counts: new Map() };
    map.set(key, f);
  }
  f.total++;
  f.counts.set(next, (f.counts.get(next) ?? 0) + 1);
}

/** Counts the n-grams of some documents (already mapped to known indexes). */
function countTopic(name: string, docs: readonly number[][], stride: number): TopicCounts {
  const unigram: MutableFollowers = { total: 0, counts: new Map() };
  const bigram = new Map<number, MutableFollowers>();
  const trigram = new Map<number, MutableFollowers>();
  for (const doc of docs) {
    for (let i = 0; i < doc.length; i++) {
      const w = doc[i] as number;
      unigram.total++;
      unigram.counts.set(w, (unigram.counts.get(w) ?? 0) + 1);
      if (i >= 1) bump(bigram, doc[i - 1] as number, w);
      if (i >= 2) bump(trigram, (doc[i - 2] as number) * stride + (doc[i - 1] as number), w);
    }
  }
  return { name, unigram, bigram, trigram };
}

/**
 * Counts the corpus. N-grams never cross a document boundary: a document's
 * first token has no history, its second only a bigram history.
 */
export function countNgrams(topics: readonly TopicTokens[]): NgramCounts {
  const ids = new Set<number>();
  for (const t of topics) for (const d of t.documents) for (const id of d) ids.add(id);
  const known = Int32Array.from([...ids].sort((a, b) => a - b));
  const indexOf = new Map<number, number>();
  known.forEach((id, i) => {
    indexOf.set(id, i);
  });
  const indexed = topics.map((t) => t.documents.map((d) => d.map((id) => indexOf.get(id) as number)));
  const topicCounts = topics.map((t, i) => countTopic(t.name, indexed[i] ?? [], known.length));
  const background = countTopic("background", indexed.flat(), known.length);
  const unigram = new Float64Array(known.length);
  for (const [w, c] of background.unigram.counts) unigram[w] = c;
  return { known, indexOf, unigram, total: background.unigram.total, topics: topicCounts, background };
}
