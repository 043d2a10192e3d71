/*
 * Draws on an injected random source. Every generator in probe-gen takes
 * its randomness as a `() => number` (uniform in [0, 1)), so a seeded
 * source reproduces a probe exactly and tests can pin one down.
 */

/** A uniform random source in [0, 1). */
export type Random = () => number;

/** An integer in [lo, hi], both included. */
export function int(random: Random, lo: number, hi: number): number {
  return lo + Math.min(hi - lo, Math.floor(random() * (hi - lo + 1)));
}

/** True with probability `p`. */
export function chance(random: Random, p: number): boolean {
  return random() < p;
}

/** One element, uniformly. The list must not be empty. */
export function pick<T>(random: Random, items: readonly T[]): T {
  if (items.length === 0) throw new Error("pick from an empty list");
  return items[Math.min(items.length - 1, Math.floor(random() * items.length))] as T;
}

/** One element with probability proportional to `weight(element)`; undefined when all weights are 0. */
export function pickWeighted<T>(
  random: Random,
  items: readonly T[],
  weight: (t: T) => number,
): T | undefined {
  let total = 0;
  for (const t of items) total += Math.max(0, weight(t));
  if (!(total > 0)) return undefined;
  let x = random() * total;
  for (const t of items) {
    x -= Math.max(0, weight(t));
    if (x < 0) return t;
  }
  // Rounding left x at (or a hair above) 0: the last element with weight.
  for (let i = items.length - 1; i >= 0; i--) {
    const t = items[i] as T;
    if (weight(t) > 0) return t;
  }
  return undefined;
}

/** `k` distinct elements (all of them when there are fewer), in draw order. */
export function sample<T>(random: Random, items: readonly T[], k: number): T[] {
  const pool = [...items];
  const out: T[] = [];
  while (out.length < k && pool.length > 0) {
    const i = Math.min(pool.length - 1, Math.floor(random() * pool.length));
    out.push(pool[i] as T);
    pool.splice(i, 1);
  }
  return out;
}

/** Upper-cases the first character. */
export function capitalise(s: string): string {
  return s.length === 0 ? s : s[0]?.toUpperCase() + s.slice(1);
}

/** A word list written as text: items separated by ";" or line breaks, trimmed, blanks dropped. */
export function list(text: string): readonly string[] {
  return Object.freeze(
    text
      .split(/[;\n]/)
      .map((s) => s.trim())
      .filter((s) => s !== ""),
  );
}
