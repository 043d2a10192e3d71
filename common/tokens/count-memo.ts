import type { TokenCount } from "./encodings.js";

/**
 * Remembers the token counts of long texts, so a chat conversation's
 * earlier messages are not tokenized again on every turn.
 *
 * A chat client sends the whole conversation each turn, and the router
 * counts every prompt itself (to bound a miner's claimed usage, and to hold
 * a metered key's worst case). BPE counting runs at roughly 30 µs per KB
 * here, so a 128 KB conversation cost ~4 ms of router CPU per turn, nearly
 * all of it on messages counted the turn before. Looking a text up costs a
 * string hash and compare instead.
 *
 * - Only texts of at least `minChars` are remembered; shorter ones are
 *   counted directly (they cost less than the bookkeeping).
 * - Entries are partitioned (the router uses the API key): a caller never
 *   hits another partition's entry, so how fast its request is counted
 *   tells it nothing about what others sent.
 * - Each counter (encoding) has its own entries: the same text counts
 *   differently under different encodings.
 * - The memory is bounded by `budgetChars`, the sum of the lengths of the
 *   texts remembered; the least recently used entries go first. A text
 *   longer than an eighth of the budget is never remembered, so one request
 *   cannot flush everyone's entries.
 */
export class TokenCountMemo {
  readonly #minChars: number;
  readonly #budgetChars: number;
  /** Entry key → count, least recently used first (a Map keeps insertion order). */
  readonly #entries = new Map<string, number>();
  /** A small number per counter, so entry keys name the encoding. */
  readonly #counterIds = new WeakMap<TokenCount, number>();
  #nextCounterId = 0;
  #chars = 0;
  #hits = 0;
  #misses = 0;

  constructor(opts: { readonly minChars?: number; readonly budgetChars?: number } = {}) {
    this.#minChars = opts.minChars ?? DEFAULT_MEMO_MIN_CHARS;
    this.#budgetChars = opts.budgetChars ?? DEFAULT_MEMO_BUDGET_CHARS;
    if (!(this.#minChars >= 1)) throw new RangeError("minChars must be at least 1");
    if (!(this.#budgetChars >= 0)) throw new RangeError("budgetChars must not be negative");
  }

  /** `count`, remembering long texts' counts in `partition`. Same answers as `count`. */
  counter(count: TokenCount, partition: string): TokenCount {
    let id = this.#counterIds.get(count);
    if (id === undefined) {
      id = this.#nextCounterId++;
      this.#counterIds.set(count, id);
    }
    // The partition may hold any character: its length, not a separator, ends it in the key.
    const prefix = `${id}:${partition.length}:${partition}`;
    return (text) => this.#count(count, prefix, text);
  }

  /** Texts remembered, their total length, and lookups that hit or missed. */
  stats(): { entries: number; chars: number; hits: number; misses: number } {
    return { entries: this.#entries.size, chars: this.#chars, hits: this.#hits, misses: this.#misses };
  }

  #count(count: TokenCount, prefix: string, text: string): number {
    if (text.length < this.#minChars || text.length > this.#budgetChars / 8) return count(text);
    const key = prefix + text;
    const known = this.#entries.get(key);
    if (known !== undefined) {
      this.#hits++;
      // Most recently used: to the end of the order.
      this.#entries.delete(key);
      this.#entries.set(key, known);
      return known;
    }
    this.#misses++;
    const n = count(text);
    this.#entries.set(key, n);
    this.#chars += key.length;
    for (const [old] of this.#entries) {
      if (this.#chars <= this.#budgetChars) break;
      this.#entries.delete(old);
      this.#chars -= old.length;
    }
    return n;
  }
}

/** Shortest text remembered: below this, counting costs about what a lookup does. */
export const DEFAULT_MEMO_MIN_CHARS = 256;
/** Characters remembered at most (up to 2 bytes each in memory). */
export const DEFAULT_MEMO_BUDGET_CHARS = 16 * 1024 * 1024;
