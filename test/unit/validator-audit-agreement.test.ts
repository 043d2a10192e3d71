import { expect } from "chai";
import {
  DEFAULT_AGREEMENT_POLICY,
  judgeAgreement,
  type PeerAnswer,
  upperMedian,
} from "../../validator/audit/agreement-judge.js";
import {
  bigramDice,
  commonPrefix,
  MAX_COMPARED_TOKENS,
  textSimilarity,
  textTokens,
} from "../../validator/audit/text-similarity.js";

// One deterministic answer, and what other miners of the same model (or not) might send.
const HONEST =
  "Photosynthesis is the process by which green plants, algae and some bacteria turn light energy into " +
  "chemical energy. In the chloroplasts, chlorophyll absorbs sunlight, which drives the splitting of water " +
  "into oxygen, protons and electrons. The energy is stored in ATP and NADPH, and the Calvin cycle then " +
  "uses them to fix carbon dioxide into sugars such as glucose.";
/** Another GPU flipped a near-tie at the last words. */
const NEARLY = HONEST.replace("such as glucose.", "like glucose.");
/** Diverged a third of the way in, same topic. */
const LATE =
  "Photosynthesis is the process by which green plants, algae and some bacteria turn light energy into " +
  "chemical energy. In the chloroplasts, chlorophyll absorbs sunlight, which powers the light reactions: " +
  "water is split, releasing oxygen as a by-product, and the captured energy is stored as ATP and NADPH " +
  "for the Calvin cycle that builds sugars from carbon dioxide.";
/** Diverged at the third word, same topic. */
const EARLY =
  "Photosynthesis is how plants, algae and some bacteria convert light energy into chemical energy. " +
  "Chlorophyll in the chloroplasts absorbs sunlight; water is split into oxygen, protons and electrons, " +
  "and the energy is stored in ATP and NADPH. The Calvin cycle then uses ATP and NADPH to fix carbon " +
  "dioxide into sugars such as glucose.";
const FILLER =
  "Thank you for your question! I am always happy to help. Please let me know if there is anything else " +
  "you would like to know about this topic, and I will do my best to answer it as clearly and as quickly " +
  "as I possibly can.";
const OTHER_FILLER =
  "Sure, here is a short story about a dragon who loved to bake bread in the mountains. Every morning the " +
  "dragon lit the oven with a gentle puff of fire and the whole village came to buy warm loaves.";

const group = (...texts: string[]): PeerAnswer[] => texts.map((text, i) => ({ hotkey: `m${i}`, text }));
const outcomes = (answers: PeerAnswer[]) =>
  Object.fromEntries([...judgeAgreement(answers)].map(([hk, j]) => [hk, j.outcome]));

describe("validator audit: text similarity", () => {
  it("tokenizes words, numbers and punctuation, case folded", () => {
    expect(textTokens("The answer is 42, Ünïcode-wise!")).to.deep.equal([
      "the",
      "answer",
      "is",
      "42",
      ",",
      "ünïcode",
      "-",
      "wise",
      "!",
    ]);
    expect(textTokens("ｆｕｌｌ width")).to.deep.equal(["full", "width"]);
  });

  it("caps the tokens compared", () => {
    expect(textTokens("a ".repeat(MAX_COMPARED_TOKENS + 50))).to.have.length(MAX_COMPARED_TOKENS);
  });

  it("measures the common prefix and bigram overlap", () => {
    expect(commonPrefix(["a", "b", "c"], ["a", "b", "d", "e"])).to.equal(2);
    expect(commonPrefix([], ["a"])).to.equal(0);
    expect(bigramDice(["a", "b"], ["a", "b"])).to.equal(1);
    // ^a, ab against ^a, ac: one shared bigram of 2 + 2.
    expect(bigramDice(["a", "b"], ["a", "c"])).to.equal(0.5);
    expect(bigramDice([], [])).to.equal(1);
    expect(bigramDice(["a"], [])).to.equal(0);
  });

  it("scores identical 1, whitespace and case aside", () => {
    expect(textSimilarity(HONEST, HONEST)).to.equal(1);
    expect(textSimilarity(HONEST, `  ${HONEST.toUpperCase().replace(/ /g, "\n")}`)).to.equal(1);
    expect(textSimilarity("", "")).to.equal(1);
    expect(textSimilarity("", HONEST)).to.equal(0);
  });

  it("keeps honest variants high and unrelated text low", () => {
    expect(textSimilarity(HONEST, NEARLY)).to.be.above(0.9);
    expect(textSimilarity(HONEST, LATE)).to.be.above(0.5);
    expect(textSimilarity(HONEST, EARLY)).to.be.above(0.5);
    expect(textSimilarity(HONEST, FILLER)).to.be.below(0.1);
    expect(textSimilarity(HONEST, OTHER_FILLER)).to.be.below(0.1);
  });

  it("is symmetric", () => {
    for (const t of [NEARLY, LATE, EARLY, FILLER]) {
      expect(textSimilarity(HONEST, t)).to.equal(textSimilarity(t, HONEST));
    }
  });
});

describe("validator audit: agreement judge", () => {
  it("takes the upper median", () => {
    expect(upperMedian([0.1, 1])).to.equal(1);
    expect(upperMedian([3, 1, 2])).to.equal(2);
    expect(upperMedian([4, 1, 3, 2])).to.equal(3);
    expect(upperMedian([])).to.be.NaN;
  });

  it("fails the one answer far from two that agree, and passes those", () => {
    const j = judgeAgreement(group(HONEST, FILLER, HONEST));
    expect(j.get("m1")?.outcome).to.equal("failed");
    expect(j.get("m1")?.detail).to.match(
      /far from the other answers: agreement 0\.0\d, consensus 1\.00 of 3/,
    );
    expect(j.get("m0")).to.include({ outcome: "passed", agreement: 1, consensus: 1 });
    expect(j.get("m2")?.outcome).to.equal("passed");
  });

  it("passes honest answers that differ slightly or diverge part-way", () => {
    expect(outcomes(group(HONEST, NEARLY, HONEST))).to.deep.equal({
      m0: "passed",
      m1: "passed",
      m2: "passed",
    });
    expect(outcomes(group(HONEST, HONEST, LATE, FILLER))).to.deep.equal({
      m0: "passed",
      m1: "passed",
      m2: "passed",
      m3: "failed",
    });
    expect(outcomes(group(HONEST, EARLY, NEARLY, LATE))).to.deep.equal({
      m0: "passed",
      m1: "passed",
      m2: "passed",
      m3: "passed",
    });
  });

  it("does not let two colluding copies outvote an honest majority", () => {
    expect(outcomes(group(FILLER, HONEST, FILLER, NEARLY, HONEST))).to.deep.equal({
      m0: "failed",
      m1: "passed",
      m2: "failed",
      m3: "passed",
      m4: "passed",
    });
  });

  it("is unverifiable with fewer than three miners", () => {
    for (const answers of [group(HONEST, FILLER), group(HONEST), []]) {
      for (const j of judgeAgreement(answers).values()) {
        expect(j.outcome).to.equal("unverifiable");
        expect(j.detail).to.match(/only \d answers to compare \(need 3\)/);
      }
    }
    // Three answers from two hotkeys are two miners.
    const twice = [...group(HONEST, FILLER), { hotkey: "m0", text: HONEST }];
    expect(outcomes(twice)).to.deep.equal({ m0: "unverifiable", m1: "unverifiable" });
  });

  it("judges nobody when nobody agrees", () => {
    const j = judgeAgreement(group(HONEST, FILLER, OTHER_FILLER));
    expect([...j.values()].map((x) => x.outcome)).to.deep.equal([
      "unverifiable",
      "unverifiable",
      "unverifiable",
    ]);
    expect(j.get("m0")?.detail).to.match(/^no consensus/);
  });

  it("needs both the floor and the margin to fail", () => {
    // LATE is below the consensus by more than the margin only if the floor is raised above its agreement.
    const answers = group(HONEST, HONEST, LATE);
    expect(judgeAgreement(answers).get("m2")?.outcome).to.equal("passed");
    const strict = { ...DEFAULT_AGREEMENT_POLICY, floor: 0.95 };
    expect(judgeAgreement(answers, strict).get("m2")?.outcome).to.equal("failed");
    const noMargin = { ...DEFAULT_AGREEMENT_POLICY, floor: 0.95, margin: 0.9 };
    expect(judgeAgreement(answers, noMargin).get("m2")?.outcome).to.equal("passed");
  });
});
