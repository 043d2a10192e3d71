import { expect } from "chai";
import { type GradedPrompt, judgeGraded, judgeGradedGroup } from "../../validator/audit/graded-judge.js";

// "What is 17 × 23?": right when the answer's last number is 391.
const sum: GradedPrompt = {
  expected: "391",
  grade: (answer) => /(-?\d+)\D*$/.exec(answer)?.[1] === "391",
};

describe("validator audit: graded judge", () => {
  describe("with a reference", () => {
    it("fails a wrong answer and passes a right one when the reference answers right", () => {
      const ref = { kind: "reference", answer: "17 × 23 = 391" } as const;
      expect(judgeGraded(sum, "The answer is 391.", ref)).to.deep.equal({
        outcome: "passed",
        detail: "graded right (the reference answers it right)",
      });
      const wrong = judgeGraded(sum, "It is 401.", ref);
      expect(wrong.outcome).to.equal("failed");
      expect(wrong.detail).to.equal('graded wrong, expected "391" (the reference answers it right)');
    });

    it("is unverifiable when the model itself gets it wrong (a tiny model and arithmetic)", () => {
      const ref = { kind: "reference", answer: "the cat sat on the mat" } as const;
      expect(judgeGraded(sum, "the cat sat", ref)).to.deep.equal({
        outcome: "unverifiable",
        detail: "graded: the reference model itself does not answer it right",
      });
      // Even a right miner answer proves nothing then.
      expect(judgeGraded(sum, "391", ref).outcome).to.equal("unverifiable");
    });

    it("is unverifiable without a reference answer", () => {
      expect(judgeGraded(sum, "391", { kind: "reference", answer: undefined }).outcome).to.equal(
        "unverifiable",
      );
    });
  });

  describe("with peers", () => {
    it("is conclusive only when a strict majority of at least two peers answers right", () => {
      const peers = (...answers: string[]) => ({ kind: "peers", answers }) as const;
      expect(judgeGraded(sum, "400", peers("391", "391")).outcome).to.equal("failed");
      expect(judgeGraded(sum, "391", peers("391", "391", "12")).detail).to.equal(
        "graded right (2 of 3 other miners answer it right)",
      );
      expect(judgeGraded(sum, "400", peers("391", "12")).detail).to.equal(
        "graded: only 1 of 2 other miners answer it right",
      );
      expect(judgeGraded(sum, "400", peers("391")).detail).to.equal("graded: 1 other answers (need 2)");
      expect(judgeGraded(sum, "400", peers()).outcome).to.equal("unverifiable");
    });

    it("judges a group, each miner against the others, one answer per hotkey", () => {
      const j = judgeGradedGroup(sum, [
        { hotkey: "a", text: "391" },
        { hotkey: "b", text: "= 391" },
        { hotkey: "c", text: "lorem ipsum" },
        { hotkey: "a", text: "nonsense" },
      ]);
      expect(Object.fromEntries([...j].map(([hk, x]) => [hk, x.outcome]))).to.deep.equal({
        // a and b: one of the two others is right, no majority.
        a: "unverifiable",
        b: "unverifiable",
        c: "failed",
      });
    });

    it("never fails honest miners of a model that cannot answer", () => {
      const babble = ["the cat sat on", "on the mat the", "cat the sat"].map((text, i) => ({
        hotkey: `h${i}`,
        text,
      }));
      for (const j of judgeGradedGroup(sum, babble).values()) expect(j.outcome).to.equal("unverifiable");
    });

    it("judges a group against a reference when one is given", () => {
      const answers = [
        { hotkey: "a", text: "391" },
        { hotkey: "b", text: "12" },
      ];
      const j = judgeGradedGroup(sum, answers, { answer: "391" });
      expect([j.get("a")?.outcome, j.get("b")?.outcome]).to.deep.equal(["passed", "failed"]);
    });
  });

  it("treats a grader that throws as deciding nothing", () => {
    const flaky: GradedPrompt = {
      expected: "x",
      grade: (a) => {
        if (a === "boom") throw new Error("grader bug");
        return a === "x";
      },
    };
    expect(judgeGraded(flaky, "boom", { kind: "reference", answer: "x" }).outcome).to.equal("unverifiable");
    expect(judgeGraded(flaky, "x", { kind: "reference", answer: "boom" }).outcome).to.equal("unverifiable");
    expect(judgeGraded(flaky, "y", { kind: "peers", answers: ["x", "boom", "x"] }).outcome).to.equal(
      "failed",
    );
  });
});
