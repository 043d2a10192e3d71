/**
 * Small deterministic random sources, for draws that must come out the same
 * on every machine and every start (the demo model's sampling, a
 * validator's pool of synthetic users, reproducible tests and benchmarks).
 * Not for anything secret.
 */
import { createHash } from "node:crypto";

/** Uniform numbers in [0, 1). */
export type Random = () => number;

/** mulberry32: a tiny, fast 32-bit generator. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** {@link seededRandom} seeded by a text (its SHA-256, first 32 bits). */
export function textSeededRandom(seed: string): Random {
  return seededRandom(createHash("sha256").update(seed).digest().readUInt32LE(0));
}
