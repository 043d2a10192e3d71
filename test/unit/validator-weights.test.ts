import { expect } from "chai";
import type { Metagraph } from "../../common/chain/chain.js";
import { epochIndex, firstBlockOfEpoch } from "../../common/chain/chain.js";
import { computeWeights, padToMinimum, U16_MAX } from "../../validator/weights.js";
import { type PendingCommit, planWeights, weightsPath } from "../../validator/weights-plan.js";

describe("validator weights", () => {
  describe("computeWeights", () => {
    const uids = new Map([
      ["a", 3],
      ["b", 1],
      ["c", 7],
      ["d", 0],
    ]);
    const cases: {
      name: string;
      scores: [string, number][];
      want: { uids: number[]; values: number[] };
    }[] = [
      {
        name: "max-normalises to 65,535 and orders by uid",
        scores: [
          ["a", 50],
          ["b", 100],
          ["c", 25],
        ],
        want: { uids: [1, 3, 7], values: [65_535, 32_768, 16_384] },
      },
      {
        name: "drops miners that are not in the metagraph",
        scores: [
          ["a", 10],
          ["zz", 1000],
        ],
        want: { uids: [3], values: [65_535] },
      },
      {
        name: "treats NaN, infinities and negatives as zero and drops zeros",
        scores: [
          ["a", Number.NaN],
          ["b", -4],
          ["c", Number.POSITIVE_INFINITY],
          ["d", 2],
        ],
        want: { uids: [0], values: [65_535] },
      },
      {
        name: "drops weights that round to zero",
        scores: [
          ["a", 1_000_000],
          ["b", 1],
        ],
        want: { uids: [3], values: [65_535] },
      },
      {
        name: "all zero → nothing",
        scores: [
          ["a", 0],
          ["b", 0],
        ],
        want: { uids: [], values: [] },
      },
      { name: "no scores → nothing", scores: [], want: { uids: [], values: [] } },
      {
        name: "a hotkey listed twice keeps its best score",
        scores: [
          ["a", 10],
          ["a", 40],
          ["b", 20],
        ],
        want: { uids: [1, 3], values: [32_768, 65_535] },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const w = computeWeights(
          c.scores.map(([hotkey, score]) => ({ hotkey, score })),
          uids,
        );
        expect({ uids: [...w.uids], values: [...w.values] }).to.deep.equal(c.want);
      });
    }

    it("is deterministic and bounded for 256 random miners", () => {
      const map = new Map(Array.from({ length: 256 }, (_, i) => [`hk${i}`, 255 - i] as const));
      const scores = Array.from({ length: 256 }, (_, i) => ({ hotkey: `hk${i}`, score: (i * 37) % 101 }));
      const w1 = computeWeights(scores, map);
      const w2 = computeWeights([...scores].reverse(), map);
      expect(w1).to.deep.equal(w2);
      expect([...w1.uids]).to.deep.equal([...w1.uids].sort((a, b) => a - b));
      expect(Math.max(...w1.values)).to.equal(U16_MAX);
      expect(w1.values.every((v) => Number.isInteger(v) && v > 0 && v <= U16_MAX)).to.equal(true);
    });
  });

  describe("padToMinimum", () => {
    const w = { uids: [4, 9], values: [65_535, 100] };
    const all = [9, 0, 1, 2, 3, 4, 5];
    it("pads with weight 1 on the lowest other uids up to MinAllowedWeights", () => {
      expect(padToMinimum(w, all, 5)).to.deep.equal({
        uids: [0, 1, 2, 4, 9],
        values: [1, 1, 1, 65_535, 100],
      });
    });
    it("needs no more uids than the subnet has", () => {
      expect(padToMinimum(w, [4, 9, 1], 64)).to.deep.equal({ uids: [1, 4, 9], values: [1, 65_535, 100] });
    });
    it("leaves long enough and empty vectors alone", () => {
      expect(padToMinimum(w, all, 2)).to.equal(w);
      expect(padToMinimum({ uids: [], values: [] }, all, 5)).to.deep.equal({ uids: [], values: [] });
    });
  });

  describe("epochs", () => {
    it("follows Subtensor's (block + netuid + 1) / (tempo + 1)", () => {
      expect(epochIndex(0, 92, 360)).to.equal(0);
      expect(epochIndex(267, 92, 360)).to.equal(0);
      expect(epochIndex(268, 92, 360)).to.equal(1);
      expect(firstBlockOfEpoch(1, 92, 360)).to.equal(268);
      expect(epochIndex(firstBlockOfEpoch(7, 92, 360), 92, 360)).to.equal(7);
    });
  });

  describe("planWeights", () => {
    const self = "5SELF";
    const base: Metagraph = {
      netuid: 92,
      block: 10_000,
      neurons: [
        { uid: 0, hotkey: "5OTHER", validatorPermit: false, lastUpdate: 0 },
        { uid: 1, hotkey: self, validatorPermit: true, lastUpdate: 9_000 },
      ],
      commitRevealEnabled: false,
      weightsSetRateLimit: 100,
      weightsVersionKey: 0n,
      tempo: 360,
      revealPeriodEpochs: 1,
      minAllowedWeights: 1,
    };
    const w = { uids: [0], values: [65_535] };
    const commit = (commitBlock: number): PendingCommit => ({
      netuid: 92,
      hotkey: self,
      uids: [0],
      values: [65_535],
      salt: [1, 2],
      versionKey: "0",
      hash: `0x${commitBlock.toString(16).padStart(64, "0")}`,
      commitBlock,
    });
    const mg = (over: Partial<Metagraph>) => ({ ...base, ...over });
    const me = (over: Partial<Metagraph["neurons"][number]>) => [
      base.neurons[0] as Metagraph["neurons"][number],
      { ...(base.neurons[1] as Metagraph["neurons"][number]), ...over },
    ];

    it("sets weights directly when commit-reveal is off and the rate limit allows", () => {
      expect(planWeights(base, self, [], w).action).to.deep.equal({ kind: "set", uid: 1 });
    });

    it("waits inside the rate limit (LastUpdate + WeightsSetRateLimit)", () => {
      const p = planWeights(mg({ block: 9_099 }), self, [], w);
      expect(p.action.kind).to.equal("wait");
      expect(p.action.kind === "wait" && p.action.reason).to.match(/next allowed at 9100/);
      expect(planWeights(mg({ block: 9_100 }), self, [], w).action.kind).to.equal("set");
    });

    it("lets a validator that never set weights go at once", () => {
      expect(planWeights(mg({ block: 5, neurons: me({ lastUpdate: 0 }) }), self, [], w).action.kind).to.equal(
        "set",
      );
    });

    it("commits instead of setting when commit-reveal is on", () => {
      expect(planWeights(mg({ commitRevealEnabled: true }), self, [], w).action).to.deep.equal({
        kind: "commit",
        uid: 1,
      });
    });

    it("commits timelocked, with the runtime's version, when the runtime has timelocked commits", () => {
      const on = mg({ commitRevealEnabled: true, commitRevealVersion: 4 });
      expect(planWeights(on, self, [], w).action).to.deep.equal({ kind: "timelock", uid: 1, version: 4 });
      expect(weightsPath(on)).to.match(/^commit_timelocked_weights: .*commit_reveal_version 4/);
      // Off stays set_weights whatever the runtime can do; no version keeps the hash scheme.
      expect(planWeights(mg({ commitRevealVersion: 4 }), self, [], w).action.kind).to.equal("set");
      expect(weightsPath(mg({ commitRevealVersion: 4 }))).to.match(/^set_weights: commit-reveal is off/);
      expect(weightsPath(mg({ commitRevealEnabled: true }))).to.match(/hash scheme/);
    });

    it("makes one timelocked commit per epoch, and still respects the rate limit", () => {
      const on = { commitRevealEnabled: true, commitRevealVersion: 4 };
      // LastUpdate 10_010 is in epoch 27 (blocks 9_654..10_014), like block 10_014.
      const same = planWeights(
        mg({ ...on, block: 10_014, weightsSetRateLimit: 0, neurons: me({ lastUpdate: 10_010 }) }),
        self,
        [],
        w,
      );
      expect(same.action.kind === "wait" && same.action.reason).to.match(
        /already made in epoch 27.*next from block 10015/,
      );
      const next = planWeights(
        mg({ ...on, block: 10_015, weightsSetRateLimit: 0, neurons: me({ lastUpdate: 10_010 }) }),
        self,
        [],
        w,
      );
      expect(next.action.kind).to.equal("timelock");
      const limited = planWeights(
        mg({ ...on, block: 10_015, weightsSetRateLimit: 100, neurons: me({ lastUpdate: 10_010 }) }),
        self,
        [],
        w,
      );
      expect(limited.action.kind === "wait" && limited.action.reason).to.match(/rate limit/);
    });

    it("reveals a commit in its reveal epoch, before anything else", () => {
      // Block 9_000 is in epoch 25; with a reveal period of 1 it is revealed in epoch 26.
      const c = commit(9_000);
      expect(epochIndex(9_000, 92, 360)).to.equal(25);
      const at = firstBlockOfEpoch(26, 92, 360);
      const p = planWeights(mg({ commitRevealEnabled: true, block: at }), self, [c], w);
      expect(p.action).to.deep.equal({ kind: "reveal", uid: 1, commit: c });
      expect(p.expired).to.deep.equal([]);
    });

    it("waits for the reveal epoch rather than piling up commits", () => {
      const c = commit(9_000);
      const p = planWeights(mg({ commitRevealEnabled: true, block: 9_150 }), self, [c], w);
      expect(p.action.kind).to.equal("wait");
      expect(p.action.kind === "wait" && p.action.reason).to.match(/reveal epoch 26/);
    });

    it("drops commits past their reveal epoch and commits afresh", () => {
      const c = commit(9_000);
      const p = planWeights(
        mg({ commitRevealEnabled: true, block: firstBlockOfEpoch(27, 92, 360) }),
        self,
        [c],
        w,
      );
      expect(p.expired).to.deep.equal([c]);
      expect(p.action.kind).to.equal("commit");
    });

    it("ignores other validators' and other subnets' commits", () => {
      const theirs = { ...commit(9_000), hotkey: "5OTHER" };
      const elsewhere = { ...commit(9_000), netuid: 3 };
      const p = planWeights(
        mg({ commitRevealEnabled: true, block: firstBlockOfEpoch(26, 92, 360) }),
        self,
        [theirs, elsewhere],
        w,
      );
      expect(p.action.kind).to.equal("commit");
    });

    it("waits when unregistered, without a permit, or with nothing positive to set", () => {
      const reasons = [
        planWeights(base, "5NOBODY", [], w),
        planWeights(mg({ neurons: me({ validatorPermit: false }) }), self, [], w),
        planWeights(base, self, [], { uids: [], values: [] }),
      ].map((p) => (p.action.kind === "wait" ? p.action.reason : p.action.kind));
      expect(reasons[0]).to.match(/not registered on subnet 92/);
      expect(reasons[1]).to.match(/no validator permit/);
      expect(reasons[2]).to.match(/setting nothing/);
    });
  });
});
