import { decodeAddress } from "@polkadot/util-crypto";
import { compactLength, u64, vecU16 } from "./commit-hash.js";

/** What a timelocked weight commit carries, once the chain has opened it. */
export interface TlockPayload {
  /** The committing validator's hotkey (SS58). */
  readonly hotkey: string;
  readonly uids: readonly number[];
  readonly values: readonly number[];
  readonly versionKey: bigint;
}

/**
 * SCALE encoding of Subtensor's `WeightsTlockPayload { hotkey: Vec<u8>,
 * uids: Vec<u16>, values: Vec<u16>, version_key: u64 }`
 * (`pallets/subtensor/src/coinbase/reveal_commits.rs`), in that field order.
 * `hotkey` holds the 32 raw bytes of the account id; the runtime decodes it
 * as an AccountId and drops the commit unless it is the committer, so a
 * stolen ciphertext cannot be replayed by another hotkey.
 */
export function encodeTlockPayload(p: TlockPayload): Uint8Array {
  const account = decodeAddress(p.hotkey);
  if (account.length !== 32) throw new RangeError("hotkey is not a 32-byte account");
  if (p.uids.length !== p.values.length) throw new RangeError("uids and values differ in length");
  return Uint8Array.from([
    ...compactLength(account.length),
    ...account,
    ...vecU16(p.uids),
    ...vecU16(p.values),
    ...u64(p.versionKey),
  ]);
}
