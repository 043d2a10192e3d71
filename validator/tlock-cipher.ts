import { createCipheriv } from "node:crypto";
import { type G2Point, g2FromBytes, ibeEncrypt, identityPoint } from "./tlock-ibe.js";
import { QUICKNET, roundMessage } from "./tlock-quicknet.js";

/**
 * Timelock encryption to a drand quicknet round, serialised the way
 * Subtensor's runtime reads it back: `TLECiphertext::<TinyBLS381>::
 * deserialize_compressed` from the `tle` crate (ideal-lab5/timelock, rev
 * 5416406cfd32799e31e1795393d4916894de4468, `tle/src/tlock.rs` and
 * `stream_ciphers.rs`), whose arkworks-derived layout is:
 *
 *   header.u       G2 point, compressed               96 bytes
 *   header.v       Vec<u8>: u64 LE length 32, bytes   40 bytes
 *   header.w       Vec<u8>: u64 LE length 32, bytes   40 bytes
 *   body           Vec<u8>: u64 LE length, then the AESOutput
 *                  { ciphertext: Vec<u8>, nonce: Vec<u8> }, each u64 LE length + bytes
 *   cipher_suite   Vec<u8>: u64 LE length 8, "AES_GCM_"
 *
 * The body is AES-256-GCM under a fresh 32-byte key with a 12-byte nonce
 * and no associated data; the ciphertext carries GCM's 16-byte tag at its
 * end. The IBE header locks that key to the round.
 */

/** The only cipher suite `tle` knows, stored in every ciphertext. */
export const CIPHER_SUITE = new TextEncoder().encode("AES_GCM_");
const NONCE_BYTES = 12;
const KEY_BYTES = 32;

let quicknetKey: G2Point | undefined;

/** The quicknet beacon key, parsed once on first use. */
export function quicknetPublicKey(): G2Point {
  quicknetKey ??= g2FromBytes(Buffer.from(QUICKNET.publicKeyHex, "hex"));
  return quicknetKey;
}

/** ark-serialize's `Vec<u8>`: u64 little-endian length, then the bytes. */
export function arkBytes(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + b.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(b.length), true);
  out.set(b, 8);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Where the randomness of one encryption comes from. */
export type RandomBytes = (n: number) => Uint8Array;

/**
 * Encrypts `plaintext` so that it opens only with the signature of drand
 * quicknet round `round`. Returns the serialised `TLECiphertext` bytes
 * (what `commit_timelocked_weights` takes as `commit`).
 *
 * `beaconKey` is quicknet's by default; tests pass another to prove the
 * identity and key handling with a beacon whose secret they hold.
 */
export function tlockEncrypt(
  plaintext: Uint8Array,
  round: bigint,
  randomBytes: RandomBytes,
  beaconKey: G2Point = quicknetPublicKey(),
): Uint8Array {
  const key = randomBytes(KEY_BYTES);
  const sigma = randomBytes(32);
  const nonce = randomBytes(NONCE_BYTES);
  if (key.length !== KEY_BYTES || sigma.length !== 32 || nonce.length !== NONCE_BYTES) {
    throw new RangeError("random source returned the wrong number of bytes");
  }
  const id = identityPoint(roundMessage(round), QUICKNET.hashToCurveDst);
  const header = ibeEncrypt(key, sigma, id, beaconKey);
  const aes = createCipheriv("aes-256-gcm", key, nonce);
  const sealed = concat([aes.update(plaintext), aes.final(), aes.getAuthTag()]);
  const body = concat([arkBytes(sealed), arkBytes(nonce)]);
  return concat([
    header.u.toRawBytes(true),
    arkBytes(header.v),
    arkBytes(header.w),
    arkBytes(body),
    arkBytes(CIPHER_SUITE),
  ]);
}
