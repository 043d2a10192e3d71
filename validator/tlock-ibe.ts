import { createHash } from "node:crypto";
import type { Fp12 } from "@noble/curves/abstract/tower.js";
import { bls12_381 } from "@noble/curves/bls12-381.js";

/**
 * Boneh–Franklin "FullIdent" identity-based encryption of a 32-byte secret,
 * on BLS12-381 with drand quicknet's group roles (identities and signatures
 * on G1, the beacon key and `U` on G2), exactly as the `tle` crate
 * (ideal-lab5/timelock at rev 5416406, the one Subtensor's runtime pins)
 * computes it in `ibe/fullident.rs` and `ibe/utils.rs`:
 *
 *   r = H3(σ, m) = sha256(σ ‖ m) read big-endian, mod the group order
 *   U = r·P                (P the G2 generator)
 *   V = σ ⊕ H2(e(Q_id, r·P_pub))
 *   W = m ⊕ H4(σ)          (H4 = sha256, truncated to the input's length)
 *
 * H2 hashes the pairing value in arkworks' serialisation (see
 * {@link gtBytes}). The curve arithmetic is @noble/curves'; only this glue is ours.
 */

const G1 = bls12_381.G1.Point;
const G2 = bls12_381.G2.Point;
const ORDER = bls12_381.params.r;

/** A G1 point (identities, pulse signatures). */
export type G1Point = InstanceType<typeof G1>;
/** A G2 point (the beacon key, the ciphertext's `U`). */
export type G2Point = InstanceType<typeof G2>;

/** The IBE part of a timelock ciphertext. */
export interface IbeCiphertext {
  /** `U = r·P` on G2. */
  readonly u: G2Point;
  /** `σ ⊕ H2(…)`, 32 bytes. */
  readonly v: Uint8Array;
  /** `m ⊕ H4(σ)`, 32 bytes. */
  readonly w: Uint8Array;
}

function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

/** Byte-wise XOR of two 32-byte strings. */
export function xor32(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== 32 || b.length < 32) throw new RangeError("IBE operands must be 32 bytes");
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = (a[i] ?? 0) ^ (b[i] ?? 0);
  return out;
}

function fpLe(x: bigint, out: Uint8Array, at: number): void {
  let v = x;
  for (let i = 0; i < 48; i++) {
    out[at + i] = Number(v & 0xffn);
    v >>= 8n;
  }
}

/**
 * An element of the pairing's target group in arkworks' canonical
 * serialisation (ark-serialize 0.4, `Fq12` = c0, c1 of `Fq6` = c0, c1, c2 of
 * `Fq2` = c0, c1 of `Fq`, each 48 bytes little-endian): 576 bytes. This is
 * what `tle`'s H2 feeds to sha256, so it has to match byte for byte.
 */
export function gtBytes(x: Fp12): Uint8Array {
  const out = new Uint8Array(576);
  let at = 0;
  for (const f6 of [x.c0, x.c1]) {
    for (const f2 of [f6.c0, f6.c1, f6.c2]) {
      fpLe(f2.c0, out, at);
      fpLe(f2.c1, out, at + 48);
      at += 96;
    }
  }
  return out;
}

/** H2: target group → 32 bytes. */
export function h2(x: Fp12): Uint8Array {
  return sha256(gtBytes(x));
}

/** H3: (σ, m) → scalar, sha256 read big-endian and reduced mod the group order. */
export function h3(sigma: Uint8Array, message: Uint8Array): bigint {
  return BigInt(`0x${Buffer.from(sha256(sigma, message)).toString("hex")}`) % ORDER;
}

/** H4: σ → 32 bytes. */
export function h4(sigma: Uint8Array): Uint8Array {
  return sha256(sigma);
}

/** The identity's public point: RFC 9380 hash of the round message to G1 under quicknet's DST. */
export function identityPoint(message: Uint8Array, dst: string): G1Point {
  return G1.fromAffine(bls12_381.G1.hashToCurve(message, { DST: dst }).toAffine());
}

/** Parses a compressed G2 point (96 bytes), checking it is on the curve and in the subgroup. */
export function g2FromBytes(bytes: Uint8Array): G2Point {
  const p = G2.fromHex(bytes);
  p.assertValidity();
  return p;
}

/** Parses a compressed G1 point (48 bytes), checking it is on the curve and in the subgroup. */
export function g1FromBytes(bytes: Uint8Array): G1Point {
  const p = G1.fromHex(bytes);
  p.assertValidity();
  return p;
}

/**
 * Encrypts a 32-byte secret `m` to an identity under the beacon key. `sigma`
 * is 32 fresh random bytes (the caller's random source, so tests can pin it).
 */
export function ibeEncrypt(m: Uint8Array, sigma: Uint8Array, id: G1Point, beaconKey: G2Point): IbeCiphertext {
  if (m.length !== 32 || sigma.length !== 32) throw new RangeError("IBE message and σ must be 32 bytes");
  const r = h3(sigma, m);
  if (r === 0n) throw new RangeError("σ hashed to the zero scalar: draw another");
  const u = G2.BASE.multiply(r);
  // e(Q_id, r·P_pub) = e(r·Q_id, P_pub): the G1 multiplication is the cheaper one, and
  // the fixed beacon key's line precomputation is cached by noble across calls. Both
  // points are already validated (parsed with checks, or hashed to the curve), so
  // the batch form skips pairing()'s second round of subgroup checks.
  const gid = bls12_381.pairingBatch([{ g1: id.multiply(r), g2: beaconKey }]);
  return { u, v: xor32(sigma, h2(gid)), w: xor32(m, h4(sigma)) };
}
