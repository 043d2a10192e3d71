import { createDecipheriv } from "node:crypto";
import { bls12_381 } from "@noble/curves/bls12-381.js";
import { CIPHER_SUITE } from "../../validator/tlock-cipher.js";
import {
  type G1Point,
  type G2Point,
  g1FromBytes,
  g2FromBytes,
  h2,
  h3,
  h4,
  type IbeCiphertext,
  xor32,
} from "../../validator/tlock-ibe.js";

/**
 * Test-only timelock decryption: the inverse of validator/tlock-cipher.ts,
 * written from the `tle` crate's `tld` (rev 5416406) so tests can open a
 * ciphertext the way Subtensor's runtime does when the drand pulse arrives.
 * Strict like arkworks: trailing bytes, short reads, a bad point or a wrong
 * signature are errors.
 */

/** A parsed `TLECiphertext<TinyBLS381>`. */
export interface ParsedTlock {
  readonly header: IbeCiphertext;
  readonly sealed: Uint8Array;
  readonly nonce: Uint8Array;
  readonly cipherSuite: Uint8Array;
}

class Reader {
  #at = 0;
  constructor(readonly bytes: Uint8Array) {}

  take(n: number): Uint8Array {
    if (this.#at + n > this.bytes.length) throw new Error(`ciphertext too short at byte ${this.#at}`);
    const out = this.bytes.subarray(this.#at, this.#at + n);
    this.#at += n;
    return out;
  }

  vec(): Uint8Array {
    const b = this.take(8);
    const len = new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true);
    if (len > BigInt(this.bytes.length)) throw new Error(`vector length ${len} exceeds the ciphertext`);
    return this.take(Number(len));
  }

  end(): void {
    if (this.#at !== this.bytes.length) throw new Error(`${this.bytes.length - this.#at} trailing bytes`);
  }
}

/** Parses the serialised ciphertext (layout in validator/tlock-cipher.ts). */
export function parseTlock(bytes: Uint8Array): ParsedTlock {
  const r = new Reader(bytes);
  const u = g2FromBytes(r.take(96));
  const v = r.vec();
  const w = r.vec();
  const body = new Reader(r.vec());
  const cipherSuite = r.vec();
  r.end();
  const sealed = body.vec();
  const nonce = body.vec();
  body.end();
  if (v.length !== 32 || w.length !== 32) throw new Error("IBE header fields must be 32 bytes");
  return { header: { u, v, w }, sealed, nonce, cipherSuite };
}

/** IBE decryption of the 32-byte key with the round's signature (the identity's private key). */
export function ibeDecrypt(ct: IbeCiphertext, signature: G1Point): Uint8Array {
  const sigma = xor32(ct.v, h2(bls12_381.pairing(signature, ct.u)));
  const m = xor32(ct.w, h4(sigma));
  const r = h3(sigma, m);
  if (r === 0n || !bls12_381.G2.Point.BASE.multiply(r).equals(ct.u)) {
    throw new Error("IBE decryption failed: the signature does not open this ciphertext");
  }
  return m;
}

/** Opens a timelock ciphertext with a drand round's signature (48-byte compressed G1). */
export function tlockDecrypt(bytes: Uint8Array, signature: Uint8Array): Uint8Array {
  const ct = parseTlock(bytes);
  if (Buffer.compare(ct.cipherSuite, CIPHER_SUITE) !== 0) throw new Error("unknown cipher suite");
  if (ct.nonce.length !== 12) throw new Error("AES-GCM nonce must be 12 bytes");
  if (ct.sealed.length < 16) throw new Error("AES-GCM body shorter than its tag");
  const key = ibeDecrypt(ct.header, g1FromBytes(signature));
  const aes = createDecipheriv("aes-256-gcm", key, ct.nonce);
  aes.setAuthTag(ct.sealed.subarray(ct.sealed.length - 16));
  const body = ct.sealed.subarray(0, ct.sealed.length - 16);
  return new Uint8Array(Buffer.concat([aes.update(body), aes.final()]));
}

/** Re-exported so tests can build a beacon of their own. */
export type { G2Point };
