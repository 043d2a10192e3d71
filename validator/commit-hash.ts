import { u8aToHex } from "@polkadot/util";
import { blake2AsU8a, decodeAddress } from "@polkadot/util-crypto";

/** What a hash-based weight commit binds (Subtensor `commit_weights`). */
export interface CommitPreimage {
  /** The committing validator's hotkey (SS58). */
  readonly hotkey: string;
  readonly netuid: number;
  readonly uids: readonly number[];
  readonly values: readonly number[];
  readonly salt: readonly number[];
  readonly versionKey: bigint;
}

/** SCALE compact length prefix; vector lengths here are far below 2^30. */
export function compactLength(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n >= 2 ** 30) throw new RangeError(`length ${n} out of range`);
  if (n < 64) return [n << 2];
  if (n < 2 ** 14) {
    const v = (n << 2) | 1;
    return [v & 0xff, v >>> 8];
  }
  const v = ((n << 2) | 2) >>> 0;
  return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
}

/** SCALE u16, little-endian. */
export function u16(n: number): number[] {
  if (!Number.isInteger(n) || n < 0 || n > 0xffff) throw new RangeError(`${n} is not a u16`);
  return [n & 0xff, n >>> 8];
}

/** SCALE `Vec<u16>`. */
export function vecU16(xs: readonly number[]): number[] {
  const out = compactLength(xs.length);
  for (const x of xs) out.push(...u16(x));
  return out;
}

/** SCALE u64, little-endian. */
export function u64(n: bigint): number[] {
  if (n < 0n || n > 0xffff_ffff_ffff_ffffn) throw new RangeError(`${n} is not a u64`);
  const out: number[] = [];
  let v = n;
  for (let i = 0; i < 8; i++) {
    out.push(Number(v & 0xffn));
    v >>= 8n;
  }
  return out;
}

/**
 * SCALE encoding of `(AccountId32, u16, Vec<u16>, Vec<u16>, Vec<u16>, u64)`:
 * exactly what Subtensor hashes to check a reveal against its commit.
 */
export function encodeCommitPreimage(p: CommitPreimage): Uint8Array {
  const account = decodeAddress(p.hotkey);
  if (account.length !== 32) throw new RangeError("hotkey is not a 32-byte account");
  return Uint8Array.from([
    ...account,
    ...u16(p.netuid),
    ...vecU16(p.uids),
    ...vecU16(p.values),
    ...vecU16(p.salt),
    ...u64(p.versionKey),
  ]);
}

/** blake2-256 of the SCALE preimage, as 0x-prefixed hex (an H256). */
export function commitHash(p: CommitPreimage): string {
  return u8aToHex(blake2AsU8a(encodeCommitPreimage(p), 256));
}

/** A fresh salt of `length` u16 values from the given random source. */
export function newSalt(randomBytes: (n: number) => Uint8Array, length = 8): number[] {
  const bytes = randomBytes(length * 2);
  const out: number[] = [];
  for (let i = 0; i < length; i++) out.push((bytes[2 * i] ?? 0) | ((bytes[2 * i + 1] ?? 0) << 8));
  return out;
}
