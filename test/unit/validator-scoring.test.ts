import { expect } from "chai";
import { successRate } from "../../common/business-points.js";
import { TensorClawError } from "../../common/errors.js";
import { MinerState } from "../../gen/tensorclaw/v1/directory.js";
import { GetUsageResponse, type MinerUsage } from "../../gen/tensorclaw/v1/usage.js";
import { type AuditRecord, auditVerdicts, failedModelsByHotkey } from "../../validator/audit/verdicts.js";
import {
  DEFAULT_LATENCY_TIERS,
  latencyTierScore,
  parseLatencyTiers,
  validateLatencyTiers,
} from "../../validator/latency-tiers.js";
import { buildMinerInputs } from "../../validator/score-inputs.js";
import {
  baseScore,
  businessPoints,
  type MinerInput,
  type ModelUsageInput,
  type ProbeRecord,
  scoreMiners,
} from "../../validator/scoring.js";

const T = DEFAULT_LATENCY_TIERS;
const ok = (latencyMs: number, atMs = 0): ProbeRecord => ({
  atMs,
  ok: true,
  latencyMs,
  ttftMs: latencyMs / 2,
});
const fail = (atMs = 0): ProbeRecord => ({ atMs, ok: false, latencyMs: 8000, ttftMs: 0 });
const repeat = (n: number, f: (i: number) => ProbeRecord) => Array.from({ length: n }, (_, i) => f(i));
/** Usage whose every token was paid for. */
const paid = (u: Omit<ModelUsageInput, "paidPromptTokens" | "paidCompletionTokens">): ModelUsageInput => ({
  ...u,
  paidPromptTokens: u.promptTokens,
  paidCompletionTokens: u.completionTokens,
});

describe("validator scoring", () => {
  describe("latency tiers", () => {
    const cases: [number, number][] = [
      [0, 100],
      [99.9, 100],
      [100, 90],
      [250, 90],
      [250.1, 75],
      [500, 75],
      [999, 55],
      [1000, 55],
      [2000, 40],
      [2000.5, 20],
      [60_000, 20],
      [Number.NaN, 20],
      [-5, 20],
    ];
    for (const [ms, score] of cases) {
      it(`${ms} ms scores ${score}`, () => expect(latencyTierScore(ms, T)).to.equal(score));
    }

    it("parses and validates configured tiers", () => {
      expect(parseLatencyTiers("300:80, 2000:30")).to.deep.equal([
        { upToMs: 300, score: 80 },
        { upToMs: 2000, score: 30 },
      ]);
      expect(latencyTierScore(150, parseLatencyTiers("300:80,2000:30"))).to.equal(80);
    });

    const bad: [string, RegExp][] = [
      ["500:75,250:90,2000:40", /bounds increase/],
      ["250:70,500:75,2000:40", /above the faster tier/],
      ["250:90,1000:55", /must end at 2000/],
      ["250:90,2500:40", /above 2000/],
      ["250:90,2000:10", /below 20/],
      ["100:90,2000:40", /must be above 100/],
      ["250:101,2000:40", /above the faster tier's 100/],
      ["fast", /ms:score pairs/],
      ["", /at least one tier/],
    ];
    for (const [text, why] of bad) {
      it(`refuses ${JSON.stringify(text)}`, () => {
        expect(() => parseLatencyTiers(text))
          .to.throw(TensorClawError, /--latency-tiers/)
          .with.property("message")
          .that.matches(why);
      });
    }

    it("accepts the defaults", () => {
      expect(validateLatencyTiers(T)).to.deep.equal(T);
    });
  });

  describe("base score", () => {
    const cases: {
      name: string;
      available: boolean;
      probes: ProbeRecord[];
      want: {
        availability: number;
        probe: number;
        latencyTier: number;
        uptime: number;
        base: number;
        ghost: boolean;
      };
    }[] = [
      {
        name: "perfect miner",
        available: true,
        probes: repeat(100, () => ok(50)),
        want: { availability: 100, probe: 100, latencyTier: 100, uptime: 100, base: 100, ghost: false },
      },
      {
        name: "ghost: latest probe failed zeroes the base",
        available: true,
        probes: [...repeat(99, () => ok(50)), fail()],
        want: { availability: 100, probe: 0, latencyTier: 0, uptime: 99, base: 0, ghost: true },
      },
      {
        name: "recovered: one failure earlier costs uptime only",
        available: true,
        probes: [fail(), ...repeat(99, () => ok(50))],
        want: { availability: 100, probe: 100, latencyTier: 100, uptime: 99, base: 99.9, ghost: false },
      },
      {
        name: "only the last 100 probes count for uptime",
        available: true,
        probes: [...repeat(50, () => fail()), ...repeat(100, () => ok(50))],
        want: { availability: 100, probe: 100, latencyTier: 100, uptime: 100, base: 100, ghost: false },
      },
      {
        name: "slow miner: 1.5 s falls in the 2 s tier",
        available: true,
        probes: [ok(1500)],
        want: {
          availability: 100,
          probe: 100,
          latencyTier: 40,
          uptime: 100,
          base: 30 + 40 + 8 + 10,
          ghost: false,
        },
      },
      {
        name: "over 2 s scores 20 for response time",
        available: true,
        probes: [ok(2500)],
        want: {
          availability: 100,
          probe: 100,
          latencyTier: 20,
          uptime: 100,
          base: 30 + 40 + 4 + 10,
          ghost: false,
        },
      },
      {
        name: "never probed: availability only",
        available: true,
        probes: [],
        want: { availability: 100, probe: 0, latencyTier: 0, uptime: 0, base: 30, ghost: false },
      },
      {
        name: "disconnected but last probe passed",
        available: false,
        probes: [fail(), ok(80)],
        want: { availability: 0, probe: 100, latencyTier: 100, uptime: 50, base: 40 + 20 + 5, ghost: false },
      },
    ];
    for (const c of cases) {
      it(c.name, () => {
        const b = baseScore(c.available, c.probes, T);
        expect(b.availability).to.equal(c.want.availability);
        expect(b.probe).to.equal(c.want.probe);
        expect(b.latencyTier).to.equal(c.want.latencyTier);
        expect(b.uptime).to.be.closeTo(c.want.uptime, 1e-9);
        expect(b.ghost).to.equal(c.want.ghost);
        expect(b.base).to.be.closeTo(c.want.base, 1e-9);
      });
    }
  });

  describe("business", () => {
    it("is tokens / 10,000 × tier multiplier summed over models", () => {
      const r = businessPoints([
        paid({
          model: "a",
          promptTokens: 15_000,
          completionTokens: 5_000,
          tierMultiplier: 1,
          successRate: 1,
        }),
        paid({
          model: "b",
          promptTokens: 1_000,
          completionTokens: 9_000,
          tierMultiplier: 2.5,
          successRate: 1,
        }),
      ]);
      expect(r.tokens).to.equal(30_000);
      expect(r.points).to.be.closeTo(2 + 2.5, 1e-12);
    });

    it("multiplies each model's points by the miner's user success rate for it", () => {
      const r = businessPoints([
        paid({ model: "a", promptTokens: 20_000, completionTokens: 0, tierMultiplier: 1, successRate: 0.5 }),
        paid({ model: "b", promptTokens: 10_000, completionTokens: 0, tierMultiplier: 2, successRate: 1 }),
        paid({ model: "c", promptTokens: 50_000, completionTokens: 0, tierMultiplier: 1, successRate: 0 }),
      ]);
      expect(r.tokens).to.equal(80_000);
      expect(r.points).to.be.closeTo(1 + 2 + 0, 1e-12);
      // A rate outside [0, 1] from a broken report is bounded.
      expect(
        businessPoints([
          paid({ model: "d", promptTokens: 10_000, completionTokens: 0, tierMultiplier: 1, successRate: 7 }),
        ]).points,
      ).to.equal(1);
    });

    it("computes the success rate from the outcome counts, cancels aside, 1 with none recorded", () => {
      const o = { served: 0, failedBeforeOutput: 0, failedAfterOutput: 0, deadlineCut: 0 };
      expect(successRate(o)).to.equal(1);
      expect(successRate({ ...o, served: 3, failedBeforeOutput: 1 })).to.equal(0.75);
      expect(successRate({ ...o, failedAfterOutput: 2, deadlineCut: 2 })).to.equal(0);
      expect(
        successRate({ served: 1, failedBeforeOutput: 1, failedAfterOutput: 1, deadlineCut: 1 }),
      ).to.equal(0.25);
    });

    it("counts broken numbers as zero instead of producing NaN or negatives", () => {
      const r = businessPoints([
        paid({
          model: "a",
          promptTokens: -5,
          completionTokens: Number.NaN,
          tierMultiplier: 1,
          successRate: 1,
        }),
        paid({ model: "b", promptTokens: 10_000, completionTokens: 0, tierMultiplier: -3, successRate: 1 }),
        paid({
          model: "c",
          promptTokens: 10_000,
          completionTokens: 0,
          tierMultiplier: Number.POSITIVE_INFINITY,
          successRate: 1,
        }),
      ]);
      expect(r.points).to.equal(0);
      expect(r.tokens).to.equal(20_000);
    });
  });

  describe("paid traffic", () => {
    const use = (model: string, all: number, paidTokens: number, tierMultiplier = 1): ModelUsageInput => ({
      model,
      promptTokens: all,
      completionTokens: all,
      paidPromptTokens: paidTokens,
      paidCompletionTokens: paidTokens,
      tierMultiplier,
      successRate: 1,
    });

    it("earns points from paid tokens only; free tokens neither earn nor count", () => {
      const usage = [use("a", 50_000, 10_000), use("b", 40_000, 0, 3), use("c", 5_000, 5_000, 2)];
      expect(businessPoints(usage)).to.deep.equal({ tokens: 30_000, points: 2 + 0 + 2 });
      expect(businessPoints([use("free", 1_000_000, 0)])).to.deep.equal({ tokens: 0, points: 0 });
    });

    it("counts every token when the router says it counts free traffic", () => {
      const usage = [use("a", 50_000, 10_000), use("b", 40_000, 0, 3)];
      expect(businessPoints(usage, [], { countFreeTraffic: true })).to.deep.equal({
        tokens: 180_000,
        points: 10 + 24,
      });
      expect(businessPoints(usage, [], { countFreeTraffic: false }).points).to.equal(2);
    });

    it("gives a miner feeding itself free traffic no business, whoever served more tokens", () => {
      const miner = (hotkey: string, usage: ModelUsageInput[]): MinerInput => ({
        hotkey,
        available: true,
        probes: [ok(50)],
        usage,
      });
      const inputs = [miner("self", [use("m", 5_000_000, 0)]), miner("paid", [use("m", 20_000, 20_000)])];
      const [paidMiner, self] = scoreMiners(inputs, T);
      expect(self).to.deep.include({ hotkey: "self", tokens: 0, businessPoints: 0, business: 0 });
      expect(self?.final).to.be.closeTo(10, 1e-9);
      expect(paidMiner).to.deep.include({ hotkey: "paid", tokens: 40_000, business: 100 });
      // A dev router counting free traffic: the biggest server of tokens leads.
      const dev = scoreMiners(inputs, T, { countFreeTraffic: true });
      expect(dev.map((s) => [s.hotkey, s.business])).to.deep.equal([
        ["paid", 0.4],
        ["self", 100],
      ]);
    });

    it("reads the paid counts from the router's report (absent in an older router's: nothing paid)", () => {
      // Encoded and decoded, as the validator receives it; model b has no paid fields on the wire.
      const sent = GetUsageResponse.fromPartial({
        miners: [
          {
            hotkey: "K",
            models: [
              {
                model: "a",
                promptTokens: 9n,
                completionTokens: 8n,
                paidPromptTokens: 7n,
                paidCompletionTokens: 6n,
              },
              { model: "b", promptTokens: 10n, completionTokens: 10n },
            ],
          },
        ],
      });
      const got = GetUsageResponse.decode(GetUsageResponse.encode(sent).finish());
      expect(got.freeTrafficCounted).to.equal(false);
      const [m] = buildMinerInputs([], new Map(), got.miners);
      expect(
        m?.usage.map((u) => [u.model, u.promptTokens, u.paidPromptTokens, u.paidCompletionTokens]),
      ).to.deep.equal([
        ["a", 9, 7, 6],
        ["b", 10, 0, 0],
      ]);
      expect(businessPoints(m?.usage ?? []).tokens).to.equal(13);
    });
  });

  describe("failed audits", () => {
    const usage = [
      paid({ model: "a", promptTokens: 20_000, completionTokens: 10_000, tierMultiplier: 1, successRate: 1 }),
      paid({ model: "b", promptTokens: 10_000, completionTokens: 0, tierMultiplier: 2, successRate: 1 }),
    ];

    it("earn a failed model nothing, tokens included, while other models still earn", () => {
      expect(businessPoints(usage)).to.deep.equal({ tokens: 40_000, points: 5 });
      expect(businessPoints(usage, ["a"])).to.deep.equal({ tokens: 10_000, points: 2 });
      expect(businessPoints(usage, ["a", "b"])).to.deep.equal({ tokens: 0, points: 0 });
      // A failed model the miner does not serve changes nothing.
      expect(businessPoints(usage, ["z"])).to.deep.equal({ tokens: 40_000, points: 5 });
    });

    it("move business to the honest miner and show in the score", () => {
      const miner = (hotkey: string, failedModels?: string[]): MinerInput => ({
        hotkey,
        available: true,
        probes: [ok(50)],
        usage,
        ...(failedModels === undefined ? {} : { failedModels }),
      });
      const [cheat, honest] = scoreMiners([miner("c", ["b", "a", "a"]), miner("h")], T);
      expect(cheat).to.deep.include({ tokens: 0, businessPoints: 0, business: 0, failedModels: ["a", "b"] });
      expect(cheat?.final).to.be.closeTo(10, 1e-9);
      expect(honest).to.deep.include({ tokens: 40_000, business: 100, failedModels: [] });
    });

    it("flip back once a later audit passes", () => {
      const rec = (atMs: number, outcome: AuditRecord["outcome"]): AuditRecord => ({
        atMs,
        hotkey: "K",
        model: "a",
        outcome,
        judge: "reference",
        detail: "",
      });
      const session = {
        sessionId: "s",
        hotkey: "K",
        models: [{ model: "a", maxConcurrency: 1, contextLength: 0 }],
        state: MinerState.MINER_STATE_ACTIVE,
      } as never;
      const minerUsage = [
        {
          hotkey: "K",
          models: [
            {
              model: "a",
              promptTokens: 30_000n,
              completionTokens: 0n,
              paidPromptTokens: 30_000n,
              paidCompletionTokens: 0n,
              tierMultiplier: 1,
              served: 0n,
              failedBeforeOutput: 0n,
              failedAfterOutput: 0n,
              deadlineCut: 0n,
            },
          ],
        },
      ] as unknown as MinerUsage[];
      const points = (audits: AuditRecord[]) => {
        const failed = failedModelsByHotkey(auditVerdicts(audits));
        const [m] = buildMinerInputs([session], new Map([["K", [ok(50)]]]), minerUsage, [], failed);
        return scoreMiners([m as MinerInput], T)[0]?.businessPoints;
      };
      expect(points([rec(1, "passed")])).to.be.closeTo(3, 1e-12);
      expect(points([rec(1, "passed"), rec(2, "failed"), rec(3, "unverifiable")])).to.equal(0);
      expect(
        points([rec(1, "passed"), rec(2, "failed"), rec(3, "unverifiable"), rec(4, "passed")]),
      ).to.be.closeTo(3, 1e-12);
    });

    it("adds no miner for a verdict alone", () => {
      expect(buildMinerInputs([], new Map(), [], [], new Map([["ghost", ["a"]]]))).to.deep.equal([]);
    });
  });

  describe("final score", () => {
    const miner = (hotkey: string, tokens: number, probes: ProbeRecord[], mult = 1): MinerInput => ({
      hotkey,
      available: true,
      probes,
      usage:
        tokens > 0
          ? [
              paid({
                model: "m",
                promptTokens: tokens,
                completionTokens: 0,
                tierMultiplier: mult,
                successRate: 1,
              }),
            ]
          : [],
    });

    it("is 10 % base + 90 % business normalised against the best miner", () => {
      const scores = scoreMiners(
        [miner("c", 0, [ok(50)]), miner("a", 200_000, [ok(50)]), miner("b", 50_000, [ok(50)], 2)],
        T,
      );
      expect(scores.map((s) => s.hotkey)).to.deep.equal(["a", "b", "c"]);
      const [a, b, c] = scores;
      expect(a?.business).to.equal(100);
      expect(a?.final).to.be.closeTo(10 + 90, 1e-9);
      // b: 5 × 2 = 10 points against a's 20.
      expect(b?.business).to.be.closeTo(50, 1e-9);
      expect(b?.final).to.be.closeTo(10 + 45, 1e-9);
      expect(c?.business).to.equal(0);
      expect(c?.final).to.be.closeTo(10, 1e-9);
    });

    it("gives a ghost with traffic only its business share", () => {
      const [g] = scoreMiners([miner("g", 100_000, [ok(50), fail()])], T);
      expect(g?.base).to.equal(0);
      expect(g?.final).to.be.closeTo(90, 1e-9);
    });

    it("gives zero business to everyone when nobody served traffic", () => {
      const scores = scoreMiners([miner("a", 0, [ok(50)]), miner("b", 0, [])], T);
      expect(scores.map((s) => s.business)).to.deep.equal([0, 0]);
      expect(scores.map((s) => s.final)).to.deep.equal([10, 3]);
    });

    it("does not depend on input order", () => {
      const xs = [miner("a", 3, [ok(120)]), miner("b", 7, [fail()]), miner("c", 1, [ok(3000)])];
      expect(scoreMiners(xs, T)).to.deep.equal(scoreMiners([...xs].reverse(), T));
    });
  });
});
