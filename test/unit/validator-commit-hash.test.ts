import { TypeRegistry } from "@polkadot/types";
import { u8aToHex } from "@polkadot/util";
import { blake2AsHex, decodeAddress } from "@polkadot/util-crypto";
import { expect } from "chai";
import { commitHash, encodeCommitPreimage, newSalt } from "../../validator/commit-hash.js";

// Alice's well-known dev key, so the fixed input is fully reproducible.
const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

describe("validator commit hash", () => {
  const input = {
    hotkey: ALICE,
    netuid: 92,
    uids: [0, 1, 300],
    values: [65_535, 100, 1],
    salt: [7, 8, 9, 65_535],
    versionKey: 3n,
  };

  it("encodes (AccountId32, u16, Vec<u16>, Vec<u16>, Vec<u16>, u64) byte for byte", () => {
    // Built by hand from the SCALE rules: compact lengths (n << 2), little-endian integers.
    const expected = Uint8Array.from([
      ...decodeAddress(ALICE),
      92,
      0,
      3 << 2,
      0,
      0,
      1,
      0,
      44,
      1,
      3 << 2,
      255,
      255,
      100,
      0,
      1,
      0,
      4 << 2,
      7,
      0,
      8,
      0,
      9,
      0,
      255,
      255,
      3,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
    ]);
    expect(u8aToHex(encodeCommitPreimage(input))).to.equal(u8aToHex(expected));
    expect(commitHash(input)).to.equal(blake2AsHex(expected, 256));
  });

  it("equals the hash of the tuple encoded by @polkadot/types", () => {
    const registry = new TypeRegistry();
    const tuple = registry.createType("(AccountId32, u16, Vec<u16>, Vec<u16>, Vec<u16>, u64)", [
      ALICE,
      input.netuid,
      input.uids,
      input.values,
      input.salt,
      input.versionKey,
    ]);
    expect(commitHash(input)).to.equal(blake2AsHex(tuple.toU8a(), 256));
  });

  it("uses two-byte compact lengths from 64 elements on", () => {
    const uids = Array.from({ length: 70 }, (_, i) => i);
    const bytes = encodeCommitPreimage({ ...input, uids, values: uids.map(() => 1) });
    // After the 32-byte account and the u16 netuid: (70 << 2) | 1 = 281 = 0x0119, little-endian.
    expect([...bytes.subarray(34, 36)]).to.deep.equal([0x19, 0x01]);
    const registry = new TypeRegistry();
    const ref = registry.createType("(AccountId32, u16, Vec<u16>, Vec<u16>, Vec<u16>, u64)", [
      ALICE,
      92,
      uids,
      uids.map(() => 1),
      input.salt,
      3n,
    ]);
    expect(u8aToHex(bytes)).to.equal(u8aToHex(ref.toU8a()));
  });

  it("changes with every bound field", () => {
    const h = commitHash(input);
    expect(commitHash({ ...input, salt: [7, 8, 9, 65_534] })).to.not.equal(h);
    expect(commitHash({ ...input, netuid: 93 })).to.not.equal(h);
    expect(commitHash({ ...input, versionKey: 4n })).to.not.equal(h);
    expect(commitHash({ ...input, values: [65_535, 100, 2] })).to.not.equal(h);
  });

  it("makes salts from the injected random source", () => {
    expect(newSalt((n) => Uint8Array.from({ length: n }, (_, i) => i), 3)).to.deep.equal([
      0x0100, 0x0302, 0x0504,
    ]);
  });
});
