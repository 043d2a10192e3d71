/** Largest weight value the chain accepts (u16). */
export const U16_MAX = 65_535;

/** Weights ready for the chain: parallel arrays, uids ascending. */
export interface WeightVector {
  readonly uids: readonly number[];
  readonly values: readonly number[];
}

/** A score to turn into a weight. */
export interface HotkeyScore {
  readonly hotkey: string;
  /** Any scale; only ratios matter. */
  readonly score: number;
}

/**
 * Turns scores into chain weights: looks each hotkey up in the metagraph
 * (`hotkeyToUid`), drops miners that are not registered, treats NaN,
 * infinities and negatives as zero, max-normalises so the best miner gets
 * 65,535, rounds, and drops zeros. When nothing positive remains the result
 * is empty: the caller must then set nothing rather than an all-zero vector.
 * Deterministic: the output is ordered by uid whatever the input order.
 */
export function computeWeights(
  scores: readonly HotkeyScore[],
  hotkeyToUid: ReadonlyMap<string, number>,
): WeightVector {
  const byUid = new Map<number, number>();
  for (const s of scores) {
    const uid = hotkeyToUid.get(s.hotkey);
    if (uid === undefined || !Number.isInteger(uid) || uid < 0 || uid > U16_MAX) continue;
    const v = Number.isFinite(s.score) && s.score > 0 ? s.score : 0;
    // A hotkey listed twice keeps its best score rather than the last one seen.
    byUid.set(uid, Math.max(byUid.get(uid) ?? 0, v));
  }
  let max = 0;
  for (const v of byUid.values()) if (v > max) max = v;
  if (max <= 0) return { uids: [], values: [] };
  const uids: number[] = [];
  const values: number[] = [];
  for (const uid of [...byUid.keys()].sort((a, b) => a - b)) {
    const w = Math.round(((byUid.get(uid) ?? 0) / max) * U16_MAX);
    if (w <= 0) continue;
    uids.push(uid);
    values.push(Math.min(U16_MAX, w));
  }
  return { uids, values };
}

/**
 * Subtensor refuses an update with fewer than min(subnet size,
 * MinAllowedWeights) uids. Like the Bittensor SDK, pad such a vector with
 * the smallest possible weight (1 of 65,535) on other registered uids, in
 * uid order, rather than set nothing. An empty vector stays empty.
 */
export function padToMinimum(
  w: WeightVector,
  registeredUids: readonly number[],
  minAllowed: number,
): WeightVector {
  const need = Math.min(minAllowed, registeredUids.length);
  if (w.uids.length === 0 || w.uids.length >= need) return w;
  const have = new Set(w.uids);
  const extra: number[] = [];
  for (const uid of [...registeredUids].sort((a, b) => a - b)) {
    if (have.size + extra.length >= need) break;
    if (!have.has(uid)) extra.push(uid);
  }
  const merged = [
    ...w.uids.map((uid, i) => [uid, w.values[i] ?? 0] as const),
    ...extra.map((uid) => [uid, 1] as const),
  ].sort((a, b) => a[0] - b[0]);
  return { uids: merged.map(([u]) => u), values: merged.map(([, v]) => v) };
}
