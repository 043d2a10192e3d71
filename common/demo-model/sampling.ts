/**
 * The demo model's random source: a small seeded generator, and the rule that
 * picks its seed for a request. With the same seed and the same prompt the
 * model writes the same answer, on any machine; a request without a seed is
 * seeded from its prompt, so it is deterministic too — which is what lets a
 * validator reproduce what an honest demo miner answered.
 */

import { type Random, seededRandom } from "../seeded-random.js";

export { type Random, seededRandom };

function fnv1a(h: number, x: number): number {
  let out = h;
  for (let shift = 0; shift < 32; shift += 8) {
    out ^= (x >>> shift) & 0xff;
    out = Math.imul(out, 0x01000193) >>> 0;
  }
  return out;
}

/**
 * The 32-bit seed of a request: its `seed` when given (an integer of any
 * size; the high and low 32 bits are mixed), otherwise a hash of its prompt
 * tokens.
 */
export function requestSeed(seed: number | bigint | undefined, promptTokens: readonly number[]): number {
  let h = 0x811c9dc5;
  if (seed !== undefined) {
    const big = BigInt.asUintN(64, BigInt(seed));
    h = fnv1a(h, Number(big & 0xffffffffn));
    return fnv1a(h, Number(big >> 32n));
  }
  h = fnv1a(h, 0xfeed);
  for (const t of promptTokens) h = fnv1a(h, t);
  return h;
}
