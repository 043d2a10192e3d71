import { expect } from "chai";
import type { AuditPrompt } from "../../validator/audit/reference-judge.js";
import type { AuditAnswer, AuditCase, GradedPrompt } from "../../validator/audit-cases.js";
import { auditPromptOf, judgeCase } from "../../validator/audit-judge.js";

const HONEST =
  "The water cycle moves water between the oceans, the air and the land through evaporation, condensation and rain.";

function auditCase(answers: [string, string, boolean?][], graded?: GradedPrompt): AuditCase {
  const map = new Map<string, AuditAnswer>(
    answers.map(([hotkey, content, ok]) => [
      hotkey,
      { hotkey, content, ok: ok ?? true, logprobs: [], atMs: 1 },
    ]),
  );
  return {
    id: 1,
    model: "m",
    kind: "chat",
    body: { messages: [{ role: "user", content: "Explain the water cycle." }], max_tokens: 64, seed: 7 },
    graded,
    openedAtMs: 0,
    pending: new Set(),
    answers: map,
  };
}

const byHotkey = (records: { hotkey: string; outcome: string }[]) =>
  Object.fromEntries(records.map((r) => [r.hotkey, r.outcome]));

describe("validator: judging an audit case", () => {
  it("without a reference, fails the answer that disagrees with the other miners", async () => {
    const records = await judgeCase(
      auditCase([
        ["A", HONEST],
        ["B", HONEST],
        ["C", `${HONEST.slice(0, -1)} again.`],
        ["F", "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor."],
      ]),
      undefined,
      99,
    );
    expect(byHotkey(records)).to.deep.equal({ A: "passed", B: "passed", C: "passed", F: "failed" });
    expect(records.every((r) => r.judge === "agreement" && r.model === "m" && r.atMs === 99)).to.equal(true);
  });

  it("with a reference, judges each answer against it with the case's prompt", async () => {
    const seen: AuditPrompt[] = [];
    const reference = {
      judge: async (p: AuditPrompt, answer: string) => {
        seen.push(p);
        return answer.startsWith("Lorem")
          ? { outcome: "failed" as const, detail: "mean logprob -9" }
          : { outcome: "passed" as const, detail: "ok" };
      },
      answer: async () => "",
    };
    const records = await judgeCase(
      auditCase([
        ["A", HONEST],
        ["F", "Lorem ipsum"],
      ]),
      reference,
      5,
    );
    expect(byHotkey(records)).to.deep.equal({ A: "passed", F: "failed" });
    expect(records.every((r) => r.judge === "reference")).to.equal(true);
    expect(seen[0]).to.deep.equal({
      messages: [{ role: "user", content: "Explain the water cycle." }],
      maxTokens: 64,
      seed: 7,
    });
  });

  it("grades a one-answer prompt only where the reference answers it right", async () => {
    const graded: GradedPrompt = { expected: "42", grade: (a) => /\b42\b/.test(a) };
    const right = {
      judge: async () => ({ outcome: "passed" as const, detail: "" }),
      answer: async () => "It is 42.",
    };
    const wrong = { ...right, answer: async () => "It is 41." };
    const answers: [string, string][] = [
      ["A", "42"],
      ["F", "banana"],
    ];
    expect(byHotkey(await judgeCase(auditCase(answers, graded), right, 1))).to.deep.equal({
      A: "passed",
      F: "failed",
    });
    // A model that cannot do it (the tiny demo model) is never failed on it.
    expect(byHotkey(await judgeCase(auditCase(answers, graded), wrong, 1))).to.deep.equal({
      A: "unverifiable",
      F: "unverifiable",
    });
  });

  it("does not judge failed probes and calls an empty answer unverifiable", async () => {
    const records = await judgeCase(
      auditCase([
        ["A", HONEST],
        ["B", "", true],
        ["C", "partial", false],
      ]),
      undefined,
      1,
    );
    expect(byHotkey(records)).to.deep.equal({ A: "unverifiable", B: "unverifiable" });
  });

  it("reads the audit prompt from the body, with a fallback length", () => {
    expect(auditPromptOf({ messages: [], max_completion_tokens: 9 })).to.deep.equal({
      messages: [],
      maxTokens: 9,
      seed: 0,
    });
    expect(auditPromptOf({}).maxTokens).to.equal(512);
    const tools = [{ type: "function", function: { name: "f" } }];
    expect(auditPromptOf({ messages: [], tools }).tools).to.deep.equal(tools);
    expect(auditPromptOf({ messages: [] })).to.not.have.property("tools");
  });
});
