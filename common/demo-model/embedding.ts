/**
 * The demo backend's embedding model, `tensorclaw-demo-embed`: hashed bag
 * of words (each lower-cased word adds ±1 to one of the vector's positions,
 * chosen by a hash of the word), normalised to length 1. Deterministic and
 * instant, and texts that share words point the same way, so a retrieval
 * demo ranks sensibly. Not a real embedding model, and never offered as one.
 * The miner's demo backend serves it, and the demo model server too, as the
 * validators' reference for it.
 */

/** The demo embedding model's id. */
export const DEMO_EMBEDDING_MODEL_ID = "tensorclaw-demo-embed";
/** Its vectors' length when no `dimensions` is asked for. */
export const DEMO_EMBEDDING_DIMENSIONS = 256;

/** FNV-1a, 32 bits: a fixed, fast string hash (no seed, so vectors never change). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** Why `dimensions` cannot be asked of the demo embedding model, or undefined when it can. */
export function demoDimensionsProblem(dimensions: number): string | undefined {
  return Number.isInteger(dimensions) && dimensions >= 1 && dimensions <= DEMO_EMBEDDING_DIMENSIONS
    ? undefined
    : `dimensions must be 1 to ${DEMO_EMBEDDING_DIMENSIONS} for ${DEMO_EMBEDDING_MODEL_ID}`;
}

/**
 * The demo vector of `text`, `dimensions` long (1 to
 * {@link DEMO_EMBEDDING_DIMENSIONS}; a smaller one is a prefix of the full
 * vector renormalised, as models trained for shortening behave). Throws a
 * RangeError for other `dimensions`.
 */
export function demoEmbedding(text: string, dimensions = DEMO_EMBEDDING_DIMENSIONS): number[] {
  const problem = demoDimensionsProblem(dimensions);
  if (problem !== undefined) throw new RangeError(problem);
  const full = new Array<number>(DEMO_EMBEDDING_DIMENSIONS).fill(0);
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [text];
  for (const w of words) {
    const h = fnv1a(w);
    full[h % DEMO_EMBEDDING_DIMENSIONS] =
      (full[h % DEMO_EMBEDDING_DIMENSIONS] ?? 0) + (h & 0x80000000 ? -1 : 1);
  }
  const v = full.slice(0, dimensions);
  const norm = Math.hypot(...v);
  // A text whose words all cancel out (or fall past a short prefix) still gets a unit vector.
  if (norm === 0) return v.map((_, i) => (i === fnv1a(text) % dimensions ? 1 : 0));
  return v.map((x) => x / norm);
}
