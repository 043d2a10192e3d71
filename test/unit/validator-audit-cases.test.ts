import { expect } from "chai";
import { type AuditAnswer, AuditCases } from "../../validator/audit-cases.js";

const answer = (hotkey: string, content = "x", atMs = 0): AuditAnswer => ({
  hotkey,
  ok: true,
  content,
  logprobs: [],
  atMs,
});

describe("validator: audit cases", () => {
  let made = 0;
  const make = () => ({ body: { messages: [{ role: "user", content: `prompt ${++made}` }] } });

  it("sends every miner of a model the same prompt, then closes once all answered", () => {
    const cases = new AuditCases({ maxAgeMs: 60_000, pendingTimeoutMs: 30_000 });
    const a = cases.take("m", "A", 0, make);
    const b = cases.take("m", "B", 10, make);
    const c = cases.take("m", "C", 20, make);
    expect(b.id).to.equal(a.id);
    expect(c.body).to.equal(a.body);
    const serving = () => ["A", "B", "C"];
    cases.answer(a.id, answer("A"));
    cases.answer(a.id, answer("B"));
    expect(cases.closeDue(30, serving)).to.deep.equal([]);
    cases.answer(a.id, answer("C"));
    const closed = cases.closeDue(40, serving);
    expect(closed.map((x) => [...x.answers.keys()].sort())).to.deep.equal([["A", "B", "C"]]);
    expect(cases.open).to.have.length(0);
  });

  it("keeps one case per model and opens the next for a miner that already answered", () => {
    const cases = new AuditCases({ maxAgeMs: 60_000, pendingTimeoutMs: 30_000 });
    const first = cases.take("m", "A", 0, make);
    cases.answer(first.id, answer("A"));
    const second = cases.take("m", "A", 5, make);
    expect(second.id).to.not.equal(first.id);
    const other = cases.take("n", "B", 5, make);
    expect(other.id).to.not.equal(first.id);
    // B's next audit of model m is the oldest case it has not answered.
    expect(cases.take("m", "B", 6, make).id).to.equal(first.id);
  });

  it("closes a case at its maximum age with whatever answers came", () => {
    const cases = new AuditCases({ maxAgeMs: 1000, pendingTimeoutMs: 500 });
    const c = cases.take("m", "A", 0, make);
    cases.answer(c.id, answer("A"));
    const serving = () => ["A", "B"];
    expect(cases.closeDue(999, serving)).to.have.length(0);
    expect(cases.closeDue(1000, serving).map((x) => x.answers.size)).to.deep.equal([1]);
  });

  it("waits for an answer in flight, but not forever; ignores answers to unknown or closed cases", () => {
    const cases = new AuditCases({ maxAgeMs: 100, pendingTimeoutMs: 500 });
    const c = cases.take("m", "A", 0, make);
    expect(cases.closeDue(200, () => ["A"])).to.have.length(0);
    const closed = cases.closeDue(501, () => ["A"]);
    expect(closed.map((x) => x.answers.size)).to.deep.equal([0]);
    cases.answer(c.id, answer("A"));
    cases.answer(999, answer("A"));
    expect(cases.open).to.have.length(0);
  });

  it("gives each miner a prompt of its own for a model judged alone, and closes each once answered", () => {
    const cases = new AuditCases({ maxAgeMs: 60_000, pendingTimeoutMs: 30_000, alone: (m) => m === "ref" });
    const a = cases.take("ref", "A", 0, make);
    const b = cases.take("ref", "B", 10, make);
    expect(b.id).to.not.equal(a.id);
    expect(b.body).to.not.deep.equal(a.body);
    // A model without a reference still shares one prompt among its miners.
    expect(cases.take("agree", "B", 10, make).id).to.equal(cases.take("agree", "A", 10, make).id);
    cases.answer(a.id, answer("A"));
    // B has not answered its own: A's closes alone, whoever else serves the model.
    const closed = cases.closeDue(20, () => ["A", "B"]);
    expect(closed.map((c) => [c.id, [...c.answers.keys()]])).to.deep.equal([[a.id, ["A"]]]);
    // B's probe failed: its case goes, and an answer after that is ignored.
    cases.withdraw(b.id, "B");
    cases.answer(b.id, answer("B"));
    expect(cases.open.map((c) => c.model)).to.deep.equal(["agree"]);
    // One sent long ago and never answered is dropped by closeDue, not judged.
    const late = cases.take("ref", "C", 30, make);
    expect(cases.closeDue(30 + 30_001, () => ["C"])).to.deep.equal([]);
    expect(cases.open.map((c) => c.id)).to.not.include(late.id);
  });

  it("takes an answer only from a miner that was sent the case", () => {
    const cases = new AuditCases({ maxAgeMs: 60_000, pendingTimeoutMs: 30_000 });
    const c = cases.take("m", "A", 0, make);
    cases.answer(c.id, answer("Z"));
    cases.withdraw(c.id, "A");
    expect(cases.open[0]?.answers.size).to.equal(0);
    expect(cases.open[0]?.pending.size).to.equal(0);
  });
});
