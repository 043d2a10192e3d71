import { expect } from "chai";
import { scoreEcho } from "../../validator/audit/reference-score.js";
import {
  calibrateThresholds,
  DEFAULT_THRESHOLD_POLICY,
  judgeReferenceScore,
} from "../../validator/audit/reference-thresholds.js";

/** A vLLM-shaped echo answer: position 0 has no logprob, as vLLM sends it. */
function echo(positions: { lp: number; top: Record<string, number> }[]) {
  return {
    choices: [
      {
        text: "",
        logprobs: {
          tokens: ["<s>", ...positions.map((_, i) => `t${i}`)],
          token_logprobs: [null, ...positions.map((p) => p.lp)],
          top_logprobs: [null, ...positions.map((p) => p.top)],
        },
      },
    ],
  };
}

const P = 1; // prompt positions besides the leading one
const top3 = { a: -0.1, b: -1.5, c: -2.5 };

describe("validator audit: reference score", () => {
  it("averages the completion's logprobs and counts tokens inside the top k", () => {
    const body = echo([
      { lp: -0.3, top: { x: -0.3, y: -2 } }, // prompt position (ignored)
      { lp: -0.1, top: top3 }, // rank 0
      { lp: -2.5, top: top3 }, // rank 2
      { lp: -4, top: { ...top3, self: -4 } }, // rank 3: vLLM lists the token beside the top k
    ]);
    const r = scoreEcho(body, P + 1, 3, 3);
    expect(r.ok).to.equal(true);
    if (!r.ok) return;
    expect(r.score.tokens).to.equal(3);
    expect(r.score.meanLogprob).to.be.closeTo((-0.1 - 2.5 - 4) / 3, 1e-12);
    expect(r.score.topKShare).to.be.closeTo(2 / 3, 1e-12);
    // With k = 1 only the rank-0 token is inside.
    const k1 = scoreEcho(body, P + 1, 3, 1);
    expect(k1.ok && k1.score.topKShare).to.be.closeTo(1 / 3, 1e-12);
  });

  it("decides membership by logprob, so equal texts or a missing key do not fool it", () => {
    // The token's text is not a key at all; two alternatives are more likely.
    const r = scoreEcho(echo([{ lp: -1, top: { p: -0.5, q: -0.9, r: -3 } }]), 1, 1, 2);
    expect(r.ok && r.score.topKShare).to.equal(0);
    // A tie with the k-th alternative counts as inside.
    const tie = scoreEcho(echo([{ lp: -0.9, top: { p: -0.5, q: -0.9000000001 } }]), 1, 1, 2);
    expect(tie.ok && tie.score.topKShare).to.equal(1);
  });

  const bad: [string, unknown, RegExp][] = [
    ["no choices", {}, /no choices\[0\]\.logprobs/],
    ["logprobs not an object", { choices: [{ logprobs: [1] }] }, /no choices\[0\]\.logprobs/],
    ["missing arrays", { choices: [{ logprobs: { token_logprobs: [] } }] }, /lack token_logprobs/],
    ["too few positions", echo([{ lp: -1, top: top3 }]), /echoed 2 positions, expected 3/],
    [
      "an extra generated position",
      echo([
        { lp: -1, top: top3 },
        { lp: -1, top: top3 },
        { lp: -1, top: top3 },
      ]),
      /echoed 4 positions, expected 3/,
    ],
    [
      "a null logprob",
      echo([
        { lp: -1, top: top3 },
        { lp: null as unknown as number, top: top3 },
      ]),
      /position 2/,
    ],
    [
      "a positive logprob",
      echo([
        { lp: -1, top: top3 },
        { lp: 0.5, top: top3 },
      ]),
      /not a log-probability/,
    ],
    [
      "a missing top",
      echo([
        { lp: -1, top: top3 },
        { lp: -1, top: null as unknown as Record<string, number> },
      ]),
      /not an object/,
    ],
    [
      "a non-number alternative",
      echo([
        { lp: -1, top: top3 },
        { lp: -1, top: { a: "x" } as unknown as Record<string, number> },
      ]),
      /non-number/,
    ],
  ];
  for (const [name, body, why] of bad) {
    it(`gives no score for ${name}`, () => {
      const r = scoreEcho(body, 1, 2, 3);
      expect(r.ok).to.equal(false);
      expect(!r.ok && r.reason).to.match(why);
    });
  }

  it("gives no score for an empty completion", () => {
    expect(scoreEcho(echo([]), 1, 0, 3)).to.deep.equal({ ok: false, reason: "empty completion" });
  });

  it("takes a hair above zero as float rounding", () => {
    const r = scoreEcho(echo([{ lp: 1e-7, top: { a: 1e-7 } }]), 1, 1, 1);
    expect(r.ok && r.score).to.deep.equal({ tokens: 1, meanLogprob: 0, topKShare: 1 });
  });
});

describe("validator audit: reference thresholds", () => {
  const s = (meanLogprob: number, topKShare: number, tokens = 50) => ({ tokens, meanLogprob, topKShare });

  it("sets marks a margin below the worst honest answer", () => {
    const t = calibrateThresholds([s(-2.2, 0.75), s(-2.6, 0.9), s(-1.9, 0.98)]);
    expect(t?.minMeanLogprob).to.be.closeTo(-3.6, 1e-12);
    expect(t?.minTopKShare).to.be.closeTo(0.6, 1e-12);
  });

  it("keeps marks within their floors and ceilings", () => {
    // A near-certain reference: marks stop at the ceilings, leaving room for numerics.
    expect(calibrateThresholds([s(-0.05, 1), s(-0.1, 1)])).to.deep.equal({
      minMeanLogprob: DEFAULT_THRESHOLD_POLICY.meanLogprobCeiling,
      minTopKShare: DEFAULT_THRESHOLD_POLICY.topKShareCeiling,
    });
    // A confused reference: marks stop at the floors, so filler still fails.
    expect(calibrateThresholds([s(-9, 0.2), s(-7, 0.4)])).to.deep.equal({
      minMeanLogprob: DEFAULT_THRESHOLD_POLICY.meanLogprobFloor,
      minTopKShare: DEFAULT_THRESHOLD_POLICY.topKShareFloor,
    });
  });

  it("draws no marks from too few usable samples", () => {
    expect(calibrateThresholds([s(-1, 1)])).to.equal(undefined);
    expect(calibrateThresholds([s(-1, 1), s(-1, 1, 2)])).to.equal(undefined);
    expect(calibrateThresholds([s(-1, 1), s(Number.NaN, Number.NaN, 0)])).to.equal(undefined);
    expect(calibrateThresholds([])).to.equal(undefined);
  });

  it("passes answers reaching both marks and fails the others, naming why", () => {
    const marks = { minMeanLogprob: -2, minTopKShare: 0.8 };
    expect(judgeReferenceScore(s(-0.4, 0.96), marks)).to.deep.equal({
      outcome: "passed",
      detail: "mean logprob -0.40, top-k share 0.96 over 50 tokens",
    });
    expect(judgeReferenceScore(s(-7.9, 0.1), marks)).to.deep.equal({
      outcome: "failed",
      detail: "mean logprob -7.90 < -2.00; top-k share 0.10 < 0.80 (50 tokens)",
    });
    expect(judgeReferenceScore(s(-1, 0.5), marks).detail).to.equal("top-k share 0.50 < 0.80 (50 tokens)");
    expect(judgeReferenceScore(s(-3, 1), marks).detail).to.equal("mean logprob -3.00 < -2.00 (50 tokens)");
    expect(judgeReferenceScore(s(-2, 0.8), marks).outcome).to.equal("passed");
  });

  it("calls answers too short to judge unverifiable", () => {
    const marks = { minMeanLogprob: -2, minTopKShare: 0.8 };
    expect(judgeReferenceScore(s(-9, 0, 2), marks).outcome).to.equal("unverifiable");
    expect(judgeReferenceScore(s(Number.NaN, Number.NaN, 0), marks).outcome).to.equal("unverifiable");
  });
});
