import { TypeRegistry } from "@polkadot/types";
import { decodeAddress } from "@polkadot/util-crypto";
import { expect } from "chai";
import { encodeTlockPayload } from "../../validator/tlock-payload.js";
import { QUICKNET } from "../../validator/tlock-quicknet.js";
import { REVEAL_SAFETY_BLOCKS, revealRound } from "../../validator/tlock-round.js";

const GENESIS_MS = QUICKNET.genesisTimeSec * 1000;
const ALICE = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";

describe("timelocked commit: reveal round and payload", () => {
  describe("revealRound (the Python SDK's arithmetic)", () => {
    const base = { netuid: 92, tempo: 360, revealPeriodEpochs: 1, block: 10_000, blockTimeMs: 12_000 };

    it("aims at the reveal epoch's first block + 3 and rounds the time down to a quicknet round", () => {
      // Block 10_000 is in epoch floor(10_093 / 361) = 27; epoch 28 starts at 28·361 − 93 = 10_015.
      // Target block 10_018 is 18 blocks (216 s) away; now is 30_000_000.5 s after genesis.
      const r = revealRound({ ...base, nowMs: GENESIS_MS + 30_000_000_500 });
      expect(r.revealEpochFirstBlock).to.equal(10_015);
      expect(r.targetBlock).to.equal(10_015 + REVEAL_SAFETY_BLOCKS);
      // (30_000_000.5 + 216) / 3 = 10_000_072.17 → 10_000_072.
      expect(r.round).to.equal(10_000_072n);
    });

    it("goes a whole epoch further per reveal period, and scales with the block time", () => {
      const now = GENESIS_MS + 30_000_000_500;
      const one = revealRound({ ...base, nowMs: now });
      const three = revealRound({ ...base, revealPeriodEpochs: 3, nowMs: now });
      expect(three.revealEpochFirstBlock - one.revealEpochFirstBlock).to.equal(2 * 361);
      // 722 more blocks of 12 s = 8_664 s = 2_888 rounds.
      expect(three.round - one.round).to.equal(2_888n);
      // Fast blocks (250 ms): 18 blocks = 4.5 s → (30_000_000.5 + 4.5) / 3 = 10_000_001.67.
      expect(revealRound({ ...base, blockTimeMs: 250, nowMs: now }).round).to.equal(10_000_001n);
    });

    it("never aims at the past, never at round 0, and refuses a non-positive block time", () => {
      const late = revealRound({ ...base, revealPeriodEpochs: 0, nowMs: GENESIS_MS + 30_000_000_500 });
      expect(late.round).to.equal(10_000_000n);
      expect(revealRound({ ...base, nowMs: 0 }).round).to.equal(1n);
      expect(() => revealRound({ ...base, blockTimeMs: 0, nowMs: GENESIS_MS })).to.throw(RangeError);
    });
  });

  describe("encodeTlockPayload (Subtensor's WeightsTlockPayload)", () => {
    it("encodes (hotkey bytes, uids, values, version_key) exactly as SCALE does", () => {
      const uids = Array.from({ length: 300 }, (_, i) => i);
      const values = uids.map((u) => (u * 211) & 0xffff);
      const ours = encodeTlockPayload({ hotkey: ALICE, uids, values, versionKey: 2n ** 64n - 1n });
      const reference = new TypeRegistry()
        .createType("(Vec<u8>, Vec<u16>, Vec<u16>, u64)", [
          Array.from(decodeAddress(ALICE)),
          uids,
          values,
          2n ** 64n - 1n,
        ])
        .toU8a();
      expect(Buffer.from(ours).toString("hex")).to.equal(Buffer.from(reference).toString("hex"));
      // Compact(32) then the raw account id: the runtime decodes it as the committer's AccountId.
      expect(ours[0]).to.equal(32 << 2);
    });

    it("refuses mismatched vectors and values that are not u16", () => {
      expect(() => encodeTlockPayload({ hotkey: ALICE, uids: [1, 2], values: [1], versionKey: 0n })).to.throw(
        RangeError,
      );
      expect(() =>
        encodeTlockPayload({ hotkey: ALICE, uids: [1], values: [65_536], versionKey: 0n }),
      ).to.throw(RangeError);
    });
  });
});
