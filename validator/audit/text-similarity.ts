/**
 * How alike two answers to the same deterministic prompt are, on a 0–1
 * scale, for judging miners by agreement (agreement-judge.ts).
 *
 * Texts are compared as word tokens (runs of letters, runs of digits, and
 * single punctuation marks, case folded), not as BPE tokens: the miners
 * being compared may run different tokenizer builds or inference servers,
 * and words make the comparison independent of all that.
 *
 * Two honest answers at temperature 0 from the same model are usually
 * identical; when they are not (another GPU, another batch size flips a
 * near-tie), they agree up to some token and then continue differently on
 * the same topic. The similarity is therefore the larger of:
 * - the shared prefix as a share of the longer answer (identical or late
 *   divergence scores near 1), and
 * - the Dice overlap of their word-bigram multisets (an early divergence
 *   on the same topic still shares phrases; an unrelated text shares few).
 */

// Letters, digits and marks that belong to a word; everything else but space is its own token.
const WORD = /[\p{L}\p{M}]+|\p{N}+|[^\s\p{L}\p{M}\p{N}]/gu;

/** Most tokens of one answer compared; the rest is ignored (bounds the work per pair). */
export const MAX_COMPARED_TOKENS = 4096;

/** The word tokens of a text, case folded (Unicode NFKC), at most {@link MAX_COMPARED_TOKENS}. */
export function textTokens(text: string): string[] {
  const out: string[] = [];
  for (const m of text.normalize("NFKC").toLowerCase().matchAll(WORD)) {
    out.push(m[0]);
    if (out.length >= MAX_COMPARED_TOKENS) break;
  }
  return out;
}

/** Length of the common prefix of two token lists. */
export function commonPrefix(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

// Bigrams keyed with a separator no token contains (tokens never hold whitespace).
function bigrams(tokens: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  // A leading sentinel gives a one-token answer one bigram, and weighs the first word.
  let prev = "\u0002";
  for (const t of tokens) {
    const key = `${prev} ${t}`;
    out.set(key, (out.get(key) ?? 0) + 1);
    prev = t;
  }
  return out;
}

/** Dice coefficient of the word-bigram multisets of two token lists (1 when both are empty). */
export function bigramDice(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 && b.length === 0) return 1;
  const ba = bigrams(a);
  const bb = bigrams(b);
  let shared = 0;
  for (const [k, n] of ba) shared += Math.min(n, bb.get(k) ?? 0);
  return (2 * shared) / (a.length + b.length);
}

/** Similarity of two tokenised answers in [0, 1]; symmetric; 1 for identical lists. */
export function tokenSimilarity(a: readonly string[], b: readonly string[]): number {
  const longer = Math.max(a.length, b.length);
  if (longer === 0) return 1;
  return Math.max(commonPrefix(a, b) / longer, bigramDice(a, b));
}

/** Similarity of two answer texts in [0, 1] (see the module comment). */
export function textSimilarity(a: string, b: string): number {
  return tokenSimilarity(textTokens(a), textTokens(b));
}
