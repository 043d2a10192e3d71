import { expect } from "chai";
import { Verdict } from "../../gen/tensorclaw/v1/probe.js";
import type { AuditOutcome } from "../../validator/audit/judgement.js";
import {
  AUDIT_HISTORY_SIZE,
  type AuditRecord,
  auditVerdicts,
  failedModelsByHotkey,
  MAX_DETAIL_CHARS,
  parseAuditRecord,
  verdictMessage,
  verdictOf,
} from "../../validator/audit/verdicts.js";

const audit = (atMs: number, outcome: AuditOutcome, hotkey = "5A", model = "m"): AuditRecord => ({
  atMs,
  hotkey,
  model,
  outcome,
  judge: "agreement",
  detail: `${outcome} at ${atMs}`,
});

describe("validator audit: verdicts", () => {
  it("is unverifiable with no conclusive audit", () => {
    expect(verdictOf("5A", "m", [])).to.deep.include({
      verdict: "unverifiable",
      audits: 0,
      lastAuditAtMs: 0,
    });
    const v = verdictOf("5A", "m", [audit(1, "unverifiable"), audit(2, "unverifiable")]);
    expect(v).to.deep.include({
      verdict: "unverifiable",
      audits: 2,
      passed: 0,
      failed: 0,
      decidedBy: undefined,
    });
  });

  it("follows the latest conclusive audit; unverifiable ones change nothing", () => {
    const history = [audit(1, "passed"), audit(2, "failed"), audit(3, "unverifiable")];
    const failed = verdictOf("5A", "m", history);
    expect(failed).to.deep.include({ verdict: "failed", audits: 3, passed: 1, failed: 1, lastAuditAtMs: 3 });
    expect(failed.decidedBy).to.deep.equal(audit(2, "failed"));
    // A failed model stays failed until an audit passes...
    const still = verdictOf("5A", "m", [...history, audit(4, "unverifiable")]);
    expect(still.verdict).to.equal("failed");
    // ...and is verified again once one does.
    const back = verdictOf("5A", "m", [...history, audit(5, "passed"), audit(6, "unverifiable")]);
    expect(back).to.deep.include({ verdict: "verified", passed: 2, failed: 1 });
    expect(back.decidedBy?.atMs).to.equal(5);
  });

  it("keeps each kind's latest conclusive audit: a model fails while any kind it is audited as does", () => {
    const vectors = (atMs: number, outcome: AuditOutcome): AuditRecord => ({
      ...audit(atMs, outcome),
      kind: "embedding",
    });
    // Filler vectors, honest chat after them: still failed, decided by the vectors.
    const history = [audit(1, "passed"), vectors(2, "failed"), audit(3, "passed"), audit(4, "passed")];
    const v = verdictOf("5A", "m", history);
    expect(v).to.deep.include({ verdict: "failed", passed: 3, failed: 1 });
    expect(v.decidedBy).to.deep.equal(vectors(2, "failed"));
    // Once the vectors pass again, the newest audit decides.
    const back = verdictOf("5A", "m", [...history, vectors(5, "passed"), audit(6, "passed")]);
    expect(back.verdict).to.equal("verified");
    expect(back.decidedBy).to.deep.equal(audit(6, "passed"));
    // Both kinds failing: the newer failure is the one reported.
    expect(verdictOf("5A", "m", [vectors(1, "failed"), audit(2, "failed")]).decidedBy).to.deep.equal(
      audit(2, "failed"),
    );
    // Stored and read back with its kind; a chat record stays as earlier validators wrote it.
    expect(parseAuditRecord(JSON.parse(JSON.stringify(vectors(2, "failed"))))).to.deep.equal(
      vectors(2, "failed"),
    );
    expect(parseAuditRecord({ ...audit(1, "passed"), kind: "chat" })).to.deep.equal(audit(1, "passed"));
    expect(parseAuditRecord({ ...audit(1, "passed"), kind: "video" })).to.equal(undefined);
  });

  it("orders audits by time whatever order they come in, ties in given order", () => {
    expect(verdictOf("5A", "m", [audit(9, "failed"), audit(2, "passed")]).verdict).to.equal("failed");
    expect(verdictOf("5A", "m", [audit(2, "failed"), audit(9, "passed")]).verdict).to.equal("verified");
    expect(verdictOf("5A", "m", [audit(5, "passed"), audit(5, "failed")]).verdict).to.equal("failed");
  });

  it("counts only the newest audits kept", () => {
    const many = [
      ...Array.from({ length: 10 }, (_, i) => audit(i, "failed")),
      ...Array.from({ length: AUDIT_HISTORY_SIZE }, (_, i) => audit(100 + i, "passed")),
    ];
    expect(verdictOf("5A", "m", many)).to.deep.include({
      audits: AUDIT_HISTORY_SIZE,
      passed: AUDIT_HISTORY_SIZE,
      failed: 0,
    });
  });

  it("groups a flat history per (hotkey, model) and lists failed models per hotkey", () => {
    const vs = auditVerdicts([
      audit(1, "failed", "5B", "x"),
      audit(1, "passed", "5A", "y"),
      audit(2, "failed", "5A", "x"),
      audit(3, "failed", "5B", "w"),
      audit(4, "passed", "5B", "x"),
      audit(5, "unverifiable", "5C", "x"),
    ]);
    expect(vs.map((v) => [v.hotkey, v.model, v.verdict])).to.deep.equal([
      ["5A", "x", "failed"],
      ["5A", "y", "verified"],
      ["5B", "w", "failed"],
      ["5B", "x", "verified"],
      ["5C", "x", "unverifiable"],
    ]);
    expect(failedModelsByHotkey(vs)).to.deep.equal(
      new Map([
        ["5A", ["x"]],
        ["5B", ["w"]],
      ]),
    );
  });

  it("maps verdicts to ReportVerdicts messages", () => {
    const [failed, unknown, verified] = auditVerdicts([
      audit(1, "failed", "a"),
      audit(1, "unverifiable", "b"),
      { ...audit(1, "passed", "c"), judge: "reference" },
    ]);
    expect(verdictMessage(failed as never)).to.deep.equal({
      hotkey: "a",
      model: "m",
      verdict: Verdict.VERDICT_FAILED,
      detail: "agreement: failed at 1",
    });
    expect(verdictMessage(unknown as never)).to.deep.include({
      verdict: Verdict.VERDICT_UNVERIFIABLE,
      detail: "no conclusive audit",
    });
    expect(verdictMessage(verified as never)).to.deep.include({
      verdict: Verdict.VERDICT_VERIFIED,
      detail: "reference: passed at 1",
    });
  });

  it("parses stored records defensively", () => {
    const good = audit(7, "failed");
    expect(parseAuditRecord(JSON.parse(JSON.stringify(good)))).to.deep.equal(good);
    expect(parseAuditRecord({ ...good, extra: 1 })).to.deep.equal(good);
    expect(parseAuditRecord({ ...good, detail: "x".repeat(1000) })?.detail).to.have.length(MAX_DETAIL_CHARS);
    for (const bad of [
      null,
      "x",
      { ...good, atMs: "7" },
      { ...good, atMs: Number.NaN },
      { ...good, hotkey: "" },
      { ...good, model: 3 },
      { ...good, outcome: "maybe" },
      { ...good, judge: "oracle" },
      { ...good, detail: undefined },
    ]) {
      expect(parseAuditRecord(bad), JSON.stringify(bad)).to.equal(undefined);
    }
  });
});
