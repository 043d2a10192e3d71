import { expect } from "chai";
import {
  bucketStart,
  buildReport,
  checkLedgerOptions,
  isValidEvent,
  retentionCutoff,
  windowEdges,
} from "../../router/ledger/ledger.js";
import { NO_OUTCOMES } from "../../router/ledger/outcomes.js";
import { parseSpoolLine, spoolLine } from "../../router/usage/spool.js";
import { usageEvent } from "../support/ledger-contract.js";

const MIN = 60_000;
const DAY = 86_400_000;
const OPTS = { bucketMs: MIN, retentionMs: DAY };

/** A raw row whose every token was paid for. */
function paid<T extends { promptTokens: number; completionTokens: number }>(r: T) {
  return { ...r, paidPromptTokens: r.promptTokens, paidCompletionTokens: r.completionTokens };
}

describe("ledger window arithmetic (pure)", () => {
  it("aligns windows to buckets: end of the current bucket, start whole buckets earlier", () => {
    const now = 10 * MIN + 1234;
    expect(windowEdges(now, DAY, MIN)).to.deep.equal({ startMs: 11 * MIN - DAY, endMs: 11 * MIN });
    expect(windowEdges(11 * MIN - 1, DAY, MIN).endMs).to.equal(11 * MIN);
    expect(windowEdges(11 * MIN, DAY, MIN).endMs).to.equal(12 * MIN);
    // Partial buckets round the window up, and a window is at least one bucket.
    expect(windowEdges(now, 90_000, MIN).startMs).to.equal(9 * MIN);
    expect(windowEdges(now, 1, MIN).startMs).to.equal(10 * MIN);
    expect(bucketStart(10 * MIN + 59_999, MIN)).to.equal(10 * MIN);
    expect(retentionCutoff(now, OPTS)).to.equal(11 * MIN - DAY);
  });

  it("counts an event in bucket b exactly while now < b + window", () => {
    const b = 100 * MIN;
    const inside = (now: number) => windowEdges(now, DAY, MIN).startMs <= b;
    expect(inside(b)).to.equal(true);
    expect(inside(b + DAY - 1)).to.equal(true);
    expect(inside(b + DAY)).to.equal(false);
  });

  it("validates ledger options and events", () => {
    expect(() => checkLedgerOptions({ bucketMs: 0, retentionMs: DAY })).to.throw(/bucket/);
    expect(() => checkLedgerOptions({ bucketMs: MIN, retentionMs: MIN - 1 })).to.throw(/retention/);
    expect(isValidEvent(usageEvent())).to.equal(true);
    expect(isValidEvent(usageEvent({ promptTokens: 2 ** 40 }))).to.equal(false);
    expect(isValidEvent(usageEvent({ finishedAtMs: -1 }))).to.equal(false);
    expect(isValidEvent(usageEvent({ requestId: "a\u0000b" }))).to.equal(false);
  });

  it("builds reports: tiers, points, ordering, and no empty rows", () => {
    const none = NO_OUTCOMES;
    const failing = { ...NO_OUTCOMES, failedBeforeOutput: 2 };
    const rows = [
      paid({
        hotkey: "b",
        model: "m1",
        promptTokens: 10_000,
        completionTokens: 0,
        requests: 1,
        outcomes: none,
      }),
      paid({
        hotkey: "a",
        model: "m1",
        promptTokens: 5_000,
        completionTokens: 5_000,
        requests: 2,
        outcomes: none,
      }),
      paid({
        hotkey: "a",
        model: "m2",
        promptTokens: 1_000,
        completionTokens: 0,
        requests: 1,
        outcomes: none,
      }),
      paid({ hotkey: "c", model: "m1", promptTokens: 0, completionTokens: 0, requests: 0, outcomes: none }),
      // No tokens, but failed attempts: reported, so its success rate can be seen.
      paid({
        hotkey: "d",
        model: "m1",
        promptTokens: 0,
        completionTokens: 0,
        requests: 0,
        outcomes: failing,
      }),
    ];
    const r = buildReport(rows, new Map([["m2", 10]]), 5 * MIN, DAY, OPTS);
    expect(r.miners.map((m) => [m.hotkey, m.businessPoints, m.requests])).to.deep.equal([
      ["a", 2, 3],
      ["b", 1, 1],
      ["d", 0, 0],
    ]);
    expect(r.miners[2]?.models[0]?.outcomes).to.deep.equal(failing);
    // Equal points: m1 (1.0) vs m2 (0.1 * 10 = 1.0) tie-break by model id.
    expect(r.miners[0]?.models.map((m) => [m.model, m.tierMultiplier])).to.deep.equal([
      ["m1", 1],
      ["m2", 10],
    ]);
    expect(r.windowEndMs - r.windowStartMs).to.equal(DAY);
  });

  it("earns points from paid tokens only, unless the report counts free traffic", () => {
    const row = (hotkey: string, model: string, all: number, paidPrompt: number, paidCompletion: number) => ({
      hotkey,
      model,
      promptTokens: all,
      completionTokens: all,
      paidPromptTokens: paidPrompt,
      paidCompletionTokens: paidCompletion,
      requests: 1,
      outcomes: NO_OUTCOMES,
    });
    // "free" served 20,000 tokens nobody paid for; "mixed" 40,000 of which 10,000 paid (tier 2 on m2).
    const rows = [row("free", "m1", 10_000, 0, 0), row("mixed", "m1", 10_000, 3_000, 2_000)];
    rows.push(row("mixed", "m2", 10_000, 5_000, 0));
    const tiers = new Map([["m2", 2]]);
    const paidOnly = buildReport(rows, tiers, 5 * MIN, DAY, OPTS);
    expect(paidOnly.freeTrafficCounted).to.equal(false);
    expect(paidOnly.miners.map((m) => [m.hotkey, m.businessPoints])).to.deep.equal([
      ["mixed", 0.5 + 1],
      ["free", 0],
    ]);
    const mixed = paidOnly.miners[0];
    expect(mixed).to.include({
      promptTokens: 20_000,
      completionTokens: 20_000,
      paidPromptTokens: 8_000,
      paidCompletionTokens: 2_000,
    });
    expect(
      mixed?.models.map((m) => [m.model, m.paidPromptTokens, m.paidCompletionTokens, m.businessPoints]),
    ).to.deep.equal([
      ["m2", 5_000, 0, 1],
      ["m1", 3_000, 2_000, 0.5],
    ]);
    // The free miner still shows its traffic, at 0 points.
    expect(paidOnly.miners[1]).to.include({ promptTokens: 10_000, paidPromptTokens: 0, businessPoints: 0 });
    const all = buildReport(rows, tiers, 5 * MIN, DAY, OPTS, { countFreeTraffic: true });
    expect(all.freeTrafficCounted).to.equal(true);
    expect(all.miners.map((m) => [m.hotkey, m.businessPoints])).to.deep.equal([
      ["mixed", 2 + 4],
      ["free", 2],
    ]);
  });

  it("round-trips spool lines and refuses lines that are not usage events", () => {
    const e = usageEvent({ outcome: "cancelled" });
    expect(parseSpoolLine(spoolLine(e).trimEnd())).to.deep.equal(e);
    expect(parseSpoolLine("{}")).to.equal(undefined);
    expect(parseSpoolLine('{"requestId":"x"')).to.equal(undefined);
    expect(parseSpoolLine(JSON.stringify({ ...e, outcome: "probe" }))).to.equal(undefined);
    for (const outcome of ["failed_early", "cut"] as const) {
      const f = usageEvent({ outcome, promptTokens: 0, completionTokens: 0 });
      expect(parseSpoolLine(spoolLine(f).trimEnd())).to.deep.equal(f);
    }
  });
});
