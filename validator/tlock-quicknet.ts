import { createHash } from "node:crypto";

/**
 * drand's quicknet beacon, which Subtensor's `pallet_drand` follows and
 * whose pulses open timelocked weight commits. The values are drand's
 * published chain info for quicknet (chain hash below); Subtensor pins the
 * same in `pallets/drand` and the Python SDK's `bittensor-drand` in
 * `src/drand.rs`.
 */
export const QUICKNET = Object.freeze({
  /** drand chain hash (sha256 of the chain info). */
  chainHash: "52db9ba70e0cc0f6eaf7803dd07447a1f5477735fd3f661792ba94600c84e971",
  /** Group public key on G2, compressed (96 bytes, zcash encoding). */
  publicKeyHex:
    "83cf0f2896adee7eb8b5f01fcad3912212c437e0073e911fb90022d3e760183c8c4b450b6a0a6c3ac6a5776a2d1064510d1fec758c921cc22b0e17e63aaf4bcb5ed66304de9cf809bd274ca73bab4af5a6e9c76a4bc09e76eae8991ef5ece45a",
  /** Unix time of round 1, in seconds. */
  genesisTimeSec: 1_692_803_367,
  /** Seconds between rounds. */
  periodSec: 3,
  /** Scheme `bls-unchained-g1-rfc9380`: signatures are RFC 9380 hashes to G1 under this DST. */
  hashToCurveDst: "BLS_SIG_BLS12381G1_XMD:SHA-256_SSWU_RO_NUL_",
});

/**
 * The message drand signs for a round (and so the IBE identity a
 * ciphertext for that round is locked to): sha256 of the round number as an
 * 8-byte big-endian integer. The pulse's signature is then the identity's
 * private key.
 */
export function roundMessage(round: bigint): Uint8Array {
  if (round < 1n || round > 0xffff_ffff_ffff_ffffn)
    throw new RangeError(`drand round ${round} is not a u64 ≥ 1`);
  const be = Buffer.alloc(8);
  be.writeBigUInt64BE(round);
  return new Uint8Array(createHash("sha256").update(be).digest());
}
