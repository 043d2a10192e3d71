import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import type { LedgerOptions, RecordResult, UsageLedger, UsageReport } from "../../router/ledger/ledger.js";
import type { UsageEvent } from "../../router/usage/event.js";

/** Builds a fresh, empty ledger for one test, and can reopen the same store. */
export interface LedgerHarness {
  readonly ledger: UsageLedger;
  /** Closes this ledger and opens the same store again (a router restart). */
  reopen(nowMs: number): Promise<UsageLedger>;
  /** Releases everything. */
  dispose(): Promise<void>;
  /**
   * Asserts that the (origin, seq) marker of `e`, last written at clock
   * `lastWriteAtMs`, is forgotten at `expiresAtMs` and not before: Redis by
   * the key's TTL, the embedded ledger by moving its clock (so call it last).
   */
  expectMarkerExpiry(e: UsageEvent, lastWriteAtMs: number, expiresAtMs: number): Promise<void>;
}

/** Options every contract case uses: one-minute buckets, 24 h retention. */
export const CONTRACT_OPTIONS: LedgerOptions = { bucketMs: 60_000, retentionMs: 86_400_000 };

/** A bucket-aligned base time for tests. */
export const T0 = 1_764_000_000_000 - (1_764_000_000_000 % 60_000);
const HOUR = 3_600_000;
const DAY = 86_400_000;
const MIN = 60_000;

let seq = 0;

/** A usage event with defaults: a paid request (pass `paid: false` for free traffic). */
export function usageEvent(over: Partial<UsageEvent> = {}): UsageEvent {
  seq++;
  return {
    requestId: `req-${seq}-${Math.random().toString(36).slice(2, 10)}`,
    minerHotkey: "miner-a",
    model: "model-x",
    promptTokens: 100,
    completionTokens: 50,
    outcome: "completed",
    startedAtMs: T0,
    finishedAtMs: T0,
    paid: true,
    ...over,
  };
}

function totalTokens(r: UsageReport, hotkey?: string, model?: string): number {
  let n = 0;
  for (const m of r.miners) {
    if (hotkey !== undefined && m.hotkey !== hotkey) continue;
    for (const x of m.models) {
      if (model !== undefined && x.model !== model) continue;
      n += x.promptTokens + x.completionTokens;
    }
  }
  return n;
}

function res(partial: Partial<RecordResult>): RecordResult {
  return { counted: 0, duplicates: 0, expired: 0, invalid: 0, ...partial };
}

/**
 * The usage-ledger contract: one suite, run against every implementation.
 * `make` is called once per test and must return an empty ledger with
 * CONTRACT_OPTIONS.
 */
export function ledgerContract(name: string, make: () => Promise<LedgerHarness>): void {
  describe(`usage ledger contract: ${name}`, () => {
    let h: LedgerHarness;
    let ledger: UsageLedger;
    beforeEach(async () => {
      h = await make();
      ledger = h.ledger;
    });
    afterEach(async () => {
      await h.dispose();
    });

    const report = (nowMs: number, windowMs = DAY, hotkeys?: string[]) =>
      ledger.usage(hotkeys === undefined ? { nowMs, windowMs } : { nowMs, windowMs, hotkeys });

    it("counts an event at t until t + 24 h (within its bucket) and not after", async () => {
      const t = T0 + 17_345; // mid-bucket
      await ledger.record([usageEvent({ finishedAtMs: t, promptTokens: 7, completionTokens: 5 })], t);
      const at = await report(t);
      expect(at.windowEndMs).to.equal(T0 + MIN);
      expect(at.windowStartMs).to.equal(T0 + MIN - DAY);
      expect(at.bucketMs).to.equal(MIN);
      expect(at.reportTimeMs).to.equal(t);
      expect(totalTokens(at)).to.equal(12);
      // The last ms at which the event's bucket is still inside the window.
      const last = await report(T0 + DAY - 1);
      expect(last.windowStartMs).to.equal(T0);
      expect(totalTokens(last)).to.equal(12);
      expect(last.miners[0]?.requests).to.equal(1);
      const gone = await report(T0 + DAY);
      expect(gone.windowStartMs).to.equal(T0 + MIN);
      expect(gone.miners).to.deep.equal([]);
    });

    it("keeps user-request outcomes per miner and model, in the same buckets and window", async () => {
      const outcomes = [
        "completed",
        "completed",
        "cancelled",
        "failed",
        "failed_early",
        "failed_early",
        "cut",
      ];
      const evs = outcomes.map((outcome, i) =>
        usageEvent({
          outcome: outcome as UsageEvent["outcome"],
          promptTokens: outcome === "completed" || outcome === "cancelled" ? 10 : 0,
          completionTokens: outcome === "completed" ? 5 : 0,
          finishedAtMs: T0 + i,
        }),
      );
      // An hour later, one more failure early in another bucket.
      evs.push(
        usageEvent({
          outcome: "failed_early",
          promptTokens: 0,
          completionTokens: 0,
          finishedAtMs: T0 + HOUR,
        }),
      );
      expect(await ledger.record(evs, T0 + HOUR)).to.deep.equal(res({ counted: 8 }));
      const day = (await report(T0 + HOUR)).miners[0]?.models[0];
      expect(day?.requests).to.equal(3); // credited: the completed and the cancelled ones
      expect(day?.promptTokens).to.equal(30);
      expect(day?.outcomes).to.deep.equal({
        served: 2,
        failedBeforeOutput: 3,
        failedAfterOutput: 1,
        deadlineCut: 1,
      });
      const lastHour = (await report(T0 + HOUR, HOUR)).miners[0]?.models[0];
      expect(lastHour?.outcomes).to.deep.equal({
        served: 0,
        failedBeforeOutput: 1,
        failedAfterOutput: 0,
        deadlineCut: 0,
      });
      // A miner with only failures still appears, with zero tokens.
      await ledger.record(
        [
          usageEvent({
            minerHotkey: "5Bad",
            outcome: "failed",
            promptTokens: 0,
            completionTokens: 0,
            finishedAtMs: T0 + HOUR,
          }),
        ],
        T0 + HOUR,
      );
      const bad = (await report(T0 + HOUR)).miners.find((m) => m.hotkey === "5Bad");
      expect(bad?.models[0]?.outcomes.failedAfterOutput).to.equal(1);
      expect(bad?.businessPoints).to.equal(0);
      // Outcomes expire with their buckets.
      const later = (await report(T0 + DAY + HOUR - 1)).miners.find((m) => m.hotkey !== "5Bad")?.models[0];
      expect(later?.outcomes).to.deep.equal({
        served: 0,
        failedBeforeOutput: 1,
        failedAfterOutput: 0,
        deadlineCut: 0,
      });
    });

    it("counts paid tokens apart from free ones and earns points from paid tokens only", async () => {
      // An event from a router that never said (no `paid` field) is free.
      const { paid: _, ...unsaid } = usageEvent({ promptTokens: 7_000, completionTokens: 0 });
      const evs = [
        usageEvent({ promptTokens: 6_000, completionTokens: 4_000 }),
        usageEvent({ paid: false, promptTokens: 50_000, completionTokens: 30_000 }),
        unsaid,
        usageEvent({ model: "model-y", promptTokens: 1_000, completionTokens: 1_500 }),
        usageEvent({ model: "model-y", paid: false, promptTokens: 9_000, completionTokens: 0 }),
        // A miner sending itself free traffic: the most tokens, no points.
        usageEvent({ minerHotkey: "miner-self", paid: false, promptTokens: 500_000, completionTokens: 1 }),
      ];
      await ledger.setTier("model-y", 2, T0);
      expect(await ledger.record(evs, T0)).to.deep.equal(res({ counted: 6 }));
      const check = async (r: UsageReport) => {
        expect(r.freeTrafficCounted).to.equal(false);
        expect(r.miners.map((m) => [m.hotkey, m.businessPoints])).to.deep.equal([
          ["miner-a", 1 + 0.5],
          ["miner-self", 0],
        ]);
        const [a, self] = r.miners;
        expect(a?.models.map((x) => [x.model, x.paidPromptTokens, x.paidCompletionTokens])).to.deep.equal([
          ["model-x", 6_000, 4_000],
          ["model-y", 1_000, 1_500],
        ]);
        // The totals still hold every token, paid or free.
        expect(a).to.deep.include({
          promptTokens: 6_000 + 50_000 + 7_000 + 1_000 + 9_000,
          completionTokens: 4_000 + 30_000 + 1_500,
          paidPromptTokens: 7_000,
          paidCompletionTokens: 5_500,
          requests: 5,
        });
        expect(self).to.deep.include({ promptTokens: 500_000, paidPromptTokens: 0, paidCompletionTokens: 0 });
      };
      await check(await report(T0));
      // Twice: the embedded ledger then loads its compacted form.
      ledger = await h.reopen(T0 + MIN);
      await check(await report(T0 + MIN));
      ledger = await h.reopen(T0 + 2 * MIN);
      await check(await report(T0 + 2 * MIN));
    });

    it("counts free traffic like paid when the report is asked to", async () => {
      await ledger.record(
        [
          usageEvent({ promptTokens: 10_000, completionTokens: 0 }),
          usageEvent({ paid: false, promptTokens: 20_000, completionTokens: 10_000 }),
          usageEvent({ minerHotkey: "miner-self", paid: false, promptTokens: 50_000, completionTokens: 0 }),
        ],
        T0,
      );
      const all = await ledger.usage({ nowMs: T0, windowMs: DAY, countFreeTraffic: true });
      expect(all.freeTrafficCounted).to.equal(true);
      expect(all.miners.map((m) => [m.hotkey, m.businessPoints])).to.deep.equal([
        ["miner-self", 5],
        ["miner-a", 4],
      ]);
      // The paid counts are reported all the same, and the setting is not stored.
      expect(all.miners[1]).to.deep.include({ paidPromptTokens: 10_000, paidCompletionTokens: 0 });
      const paidOnly = await report(T0);
      expect(paidOnly.freeTrafficCounted).to.equal(false);
      expect(paidOnly.miners.map((m) => [m.hotkey, m.businessPoints])).to.deep.equal([
        ["miner-a", 1],
        ["miner-self", 0],
      ]);
    });

    it("keeps paid counts exact over shorter windows and as buckets expire", async () => {
      const paidAt = (m: number, p: number) =>
        usageEvent({ finishedAtMs: T0 + m * MIN, promptTokens: p, completionTokens: 1 });
      const freeAt = (m: number, p: number) => ({ ...paidAt(m, p), paid: false });
      await ledger.record(
        [paidAt(0, 10), freeAt(0, 1000), paidAt(90, 20), freeAt(120, 2000), paidAt(120, 40)],
        T0 + 120 * MIN,
      );
      const paid = (r: UsageReport) => [r.miners[0]?.paidPromptTokens, r.miners[0]?.paidCompletionTokens];
      expect(paid(await report(T0 + 120 * MIN))).to.deep.equal([70, 3]);
      // One hour: minutes 61..120.
      expect(paid(await report(T0 + 120 * MIN, HOUR))).to.deep.equal([60, 2]);
      // Minute 0 expires; a new event trims it from the running totals.
      await ledger.record([paidAt(24 * 60 + 1, 5)], T0 + DAY + MIN);
      const later = await report(T0 + DAY + MIN);
      expect(paid(later)).to.deep.equal([65, 3]);
      expect(later.miners[0]?.promptTokens).to.equal(2065);
      expect(later.miners[0]?.businessPoints).to.be.closeTo(68 / 10_000, 1e-12);
    });

    it("counts a replay's paid tokens once, and a replay cannot turn free tokens into paid ones", async () => {
      const free = usageEvent({ origin: "o-p", seq: 1, paid: false, promptTokens: 100, completionTokens: 0 });
      const byId = usageEvent({ paid: true, promptTokens: 30, completionTokens: 0 });
      expect(await ledger.record([free, byId], T0)).to.deep.equal(res({ counted: 2 }));
      expect(
        await ledger.record([{ ...free, paid: true }, byId, { ...byId, paid: false }], T0 + MIN),
      ).to.deep.equal(res({ duplicates: 3 }));
      ledger = await h.reopen(T0 + HOUR);
      expect(await ledger.record([{ ...free, paid: true }, byId], T0 + HOUR)).to.deep.equal(
        res({ duplicates: 2 }),
      );
      const m = (await report(T0 + HOUR)).miners[0];
      expect(m).to.deep.include({ promptTokens: 130, paidPromptTokens: 30, requests: 2 });
      expect(m?.businessPoints).to.be.closeTo(30 / 10_000, 1e-12);
    });

    it("sums shorter windows exactly to the bucket", async () => {
      const evs = [0, 30, 59, 60, 61, 119, 120, 180].map((m) =>
        usageEvent({ finishedAtMs: T0 + m * MIN + 5, promptTokens: m + 1, completionTokens: 0 }),
      );
      await ledger.record(evs, T0 + 180 * MIN + 10);
      const now = T0 + 180 * MIN + 10;
      // 1 h window: buckets from minute 121 to 180 inclusive.
      const hour = await report(now, HOUR);
      expect(hour.windowStartMs).to.equal(T0 + 121 * MIN);
      expect(totalTokens(hour)).to.equal(181);
      // 2 h window: minutes 61..180.
      expect(totalTokens(await report(now, 2 * HOUR))).to.equal(62 + 120 + 121 + 181);
      // Most buckets inside: totals minus the few outside (minute 0 only).
      expect(totalTokens(await report(now, 179 * MIN))).to.equal(31 + 60 + 61 + 62 + 120 + 121 + 181);
      // A window that is not a whole number of buckets is rounded up to buckets.
      const odd = await report(now, 59 * MIN + 1);
      expect(odd.windowStartMs).to.equal(T0 + 121 * MIN);
    });

    it("reports many miners × models with exact per-model and per-miner sums", async () => {
      const expected = new Map<string, number>();
      const evs: UsageEvent[] = [];
      for (let i = 0; i < 300; i++) {
        const hk = `miner-${i % 12}`;
        const model = `model-${i % 5}`;
        const p = (i * 37) % 101;
        const c = (i * 53) % 89;
        evs.push(
          usageEvent({
            minerHotkey: hk,
            model,
            promptTokens: p,
            completionTokens: c,
            finishedAtMs: T0 - (i % 7) * HOUR,
          }),
        );
        expected.set(`${hk}/${model}`, (expected.get(`${hk}/${model}`) ?? 0) + p + c);
      }
      await ledger.setTier("model-3", 4, T0);
      expect(await ledger.record(evs.slice(0, 150), T0)).to.deep.equal(res({ counted: 150 }));
      expect(await ledger.record(evs.slice(150), T0)).to.deep.equal(res({ counted: 150 }));
      const r = await report(T0);
      expect(r.miners).to.have.length(12);
      for (const m of r.miners) {
        let sum = 0;
        let pts = 0;
        for (const x of m.models) {
          expect(x.promptTokens + x.completionTokens).to.equal(expected.get(`${m.hotkey}/${x.model}`));
          expect(x.tierMultiplier).to.equal(x.model === "model-3" ? 4 : 1);
          expect(x.businessPoints).to.be.closeTo(
            ((x.promptTokens + x.completionTokens) / 10_000) * x.tierMultiplier,
            1e-12,
          );
          sum += x.promptTokens + x.completionTokens;
          pts += x.businessPoints;
        }
        expect(m.promptTokens + m.completionTokens).to.equal(sum);
        expect(m.businessPoints).to.be.closeTo(pts, 1e-9);
        expect(m.requests).to.equal(25);
      }
      const pts = r.miners.map((m) => m.businessPoints);
      expect(pts).to.deep.equal([...pts].sort((a, b) => b - a));
      const only = await report(T0, DAY, ["miner-3", "miner-7", "nobody"]);
      expect(only.miners.map((m) => m.hotkey).sort()).to.deep.equal(["miner-3", "miner-7"]);
    });

    it("applies tier changes to the whole window and removes them", async () => {
      await ledger.record([usageEvent({ model: "big", promptTokens: 15_000, completionTokens: 5_000 })], T0);
      expect((await report(T0)).miners[0]?.businessPoints).to.equal(2);
      await ledger.setTier("big", 2.5, T0);
      await ledger.setTier("small", 0.5, T0);
      expect([...(await ledger.tiers())]).to.deep.equal([
        ["big", 2.5],
        ["small", 0.5],
      ]);
      const r = await report(T0);
      expect(r.miners[0]?.models[0]?.tierMultiplier).to.equal(2.5);
      expect(r.miners[0]?.businessPoints).to.equal(5);
      expect(await ledger.removeTier("big", T0)).to.equal(true);
      expect(await ledger.removeTier("big", T0)).to.equal(false);
      expect((await report(T0)).miners[0]?.businessPoints).to.equal(2);
      for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, 1e9]) {
        await expectInvalid(() => ledger.setTier("big", bad, T0));
      }
      await expectInvalid(() => ledger.setTier("has space", 2, T0));
    });

    it("counts a request id once, within a batch, across batches and across a restart", async () => {
      const e = usageEvent({ promptTokens: 10, completionTokens: 1 });
      expect(await ledger.record([e, e], T0)).to.deep.equal(res({ counted: 1, duplicates: 1 }));
      expect(await ledger.record([e], T0 + HOUR)).to.deep.equal(res({ duplicates: 1 }));
      // Same request id with other counts: still the same request.
      expect(await ledger.record([{ ...e, promptTokens: 999 }], T0 + HOUR)).to.deep.equal(
        res({ duplicates: 1 }),
      );
      ledger = await h.reopen(T0 + 2 * HOUR);
      expect(await ledger.record([e], T0 + 2 * HOUR)).to.deep.equal(res({ duplicates: 1 }));
      const r = await report(T0 + 2 * HOUR);
      expect(totalTokens(r)).to.equal(11);
      expect(r.miners[0]?.requests).to.equal(1);
    });

    it("counts an (origin, seq) once, within a batch, across batches and across restarts", async () => {
      const e = usageEvent({ origin: "o-a", seq: 5, promptTokens: 10, completionTokens: 1 });
      expect(await ledger.record([e, e], T0)).to.deep.equal(res({ counted: 1, duplicates: 1 }));
      // Another request id with the same key is the same event (a replay keeps its key).
      expect(await ledger.record([{ ...e, requestId: "other", promptTokens: 999 }], T0 + HOUR)).to.deep.equal(
        res({ duplicates: 1 }),
      );
      ledger = await h.reopen(T0 + 2 * HOUR);
      expect(await ledger.record([e], T0 + 2 * HOUR)).to.deep.equal(res({ duplicates: 1 }));
      // A second restart (the embedded ledger then loads its compacted form).
      ledger = await h.reopen(T0 + 3 * HOUR);
      expect(await ledger.record([e], T0 + 3 * HOUR)).to.deep.equal(res({ duplicates: 1 }));
      const r = await report(T0 + 3 * HOUR);
      expect(totalTokens(r)).to.equal(11);
      expect(r.miners[0]?.requests).to.equal(1);
    });

    it("keys markers by origin, by miner and by seq (across bitmap chunks)", async () => {
      const base = { origin: "o-a", seq: 7, promptTokens: 1, completionTokens: 0 };
      const evs = [
        usageEvent(base),
        usageEvent({ ...base, origin: "o-b" }),
        usageEvent({ ...base, minerHotkey: "miner-b" }),
        usageEvent({ ...base, seq: 8 }),
        // Same bit, next chunk of 65,536.
        usageEvent({ ...base, seq: 7 + 65_536 }),
        usageEvent({ ...base, seq: 0 }),
        usageEvent({ ...base, seq: 65_535 }),
      ];
      expect(await ledger.record(evs, T0)).to.deep.equal(res({ counted: 7 }));
      expect(await ledger.record(evs, T0 + MIN)).to.deep.equal(res({ duplicates: 7 }));
      ledger = await h.reopen(T0 + HOUR);
      expect(await ledger.record(evs.slice().reverse(), T0 + HOUR)).to.deep.equal(res({ duplicates: 7 }));
      const r = await report(T0 + HOUR);
      expect(r.miners.map((m) => [m.hotkey, m.requests])).to.deep.equal([
        ["miner-a", 6],
        ["miner-b", 1],
      ]);
    });

    it("dedupes events without origin/seq by request id beside keyed events in one batch", async () => {
      const old = usageEvent({ promptTokens: 3, completionTokens: 0 });
      const keyed = usageEvent({ origin: "o-a", seq: 0, promptTokens: 5, completionTokens: 0 });
      // The same request id under the other kind of key is another key: counted.
      const keyedOldId = usageEvent({ origin: "o-a", seq: 1, requestId: old.requestId, completionTokens: 0 });
      expect(await ledger.record([old, keyed, old, keyed, keyedOldId], T0)).to.deep.equal(
        res({ counted: 3, duplicates: 2 }),
      );
      ledger = await h.reopen(T0 + HOUR);
      expect(await ledger.record([keyed, old], T0 + HOUR)).to.deep.equal(res({ duplicates: 2 }));
      expect(totalTokens(await report(T0 + HOUR))).to.equal(3 + 5 + 100);
    });

    it("refuses half a key and malformed origins or seqs as invalid", async () => {
      const bad = [
        usageEvent({ origin: "o-a" }),
        usageEvent({ seq: 1 }),
        usageEvent({ origin: "o:a", seq: 1 }),
        usageEvent({ origin: "", seq: 1 }),
        usageEvent({ origin: "x".repeat(65), seq: 1 }),
        usageEvent({ origin: "o-a", seq: -1 }),
        usageEvent({ origin: "o-a", seq: 1.5 }),
        usageEvent({ origin: "o-a", seq: Number.MAX_SAFE_INTEGER + 1 }),
      ];
      expect(await ledger.record(bad, T0)).to.deep.equal(res({ invalid: bad.length }));
      expect((await report(T0)).miners).to.deep.equal([]);
    });

    it("keeps a marker while its newest event can count, then forgets it", async () => {
      // One chunk, three calls at one clock: a newer event extends the chunk's
      // life (e2 after e3), an older one does not shorten it (e1 after e2).
      const e1 = usageEvent({ origin: "o-t", seq: 1, finishedAtMs: T0 });
      const e2 = usageEvent({ origin: "o-t", seq: 2, finishedAtMs: T0 + HOUR });
      const e3 = usageEvent({ origin: "o-t", seq: 3, finishedAtMs: T0 - HOUR });
      for (const e of [e3, e2, e1]) {
        expect(await ledger.record([e], T0 + HOUR)).to.deep.equal(res({ counted: 1 }));
      }
      // While e1's bucket can still count, a replay is a duplicate; then it is expired.
      expect(await ledger.record([e1], T0 + DAY - 1)).to.deep.equal(res({ duplicates: 1 }));
      expect(await ledger.record([e1], T0 + DAY)).to.deep.equal(res({ expired: 1 }));
      await h.expectMarkerExpiry(e1, T0 + HOUR, T0 + HOUR + DAY + 2 * MIN);
    });

    it("keeps usage and tiers across a restart", async () => {
      await ledger.setTier("model-x", 3, T0);
      await ledger.record([usageEvent({ promptTokens: 20_000, completionTokens: 0 })], T0);
      await ledger.record([usageEvent({ minerHotkey: "miner-b", finishedAtMs: T0 - 22 * HOUR })], T0);
      ledger = await h.reopen(T0 + HOUR);
      const r = await report(T0 + HOUR);
      expect(r.miners.map((m) => m.hotkey)).to.deep.equal(["miner-a", "miner-b"]);
      expect(r.miners[0]?.businessPoints).to.equal(6);
      expect(r.miners[1]?.businessPoints).to.be.closeTo(0.045, 1e-12);
      // The older event expires while the newer stays.
      const later = await report(T0 + 2 * HOUR);
      expect(later.miners.map((m) => m.hotkey)).to.deep.equal(["miner-a"]);
    });

    it("refuses expired and malformed events and clamps future ones to the clock", async () => {
      const old = usageEvent({ finishedAtMs: T0 - DAY - MIN });
      const future = usageEvent({ finishedAtMs: T0 + 10 * DAY, promptTokens: 1, completionTokens: 1 });
      const bad = [
        usageEvent({ promptTokens: -1 }),
        usageEvent({ completionTokens: 1.5 }),
        usageEvent({ requestId: "" }),
        usageEvent({ model: "bad\nmodel" }),
        usageEvent({ minerHotkey: "x".repeat(300) }),
        usageEvent({ promptTokens: Number.NaN }),
      ];
      expect(await ledger.record([old, future, ...bad], T0)).to.deep.equal(
        res({ counted: 1, expired: 1, invalid: 6 }),
      );
      // The future event sits in the current bucket, so it expires with it.
      expect(totalTokens(await report(T0 + DAY - 1))).to.equal(2);
      expect(totalTokens(await report(T0 + DAY))).to.equal(0);
    });

    it("trims expired buckets, keeps new traffic, and forgets idle miners", async () => {
      await ledger.record([usageEvent({ promptTokens: 5, completionTokens: 0 })], T0);
      await ledger.record(
        [usageEvent({ finishedAtMs: T0 + DAY + MIN, promptTokens: 3, completionTokens: 0 })],
        T0 + DAY + MIN,
      );
      const r = await report(T0 + DAY + MIN);
      expect(totalTokens(r)).to.equal(3);
      expect(r.miners[0]?.requests).to.equal(1);
      expect((await report(T0 + 3 * DAY)).miners).to.deep.equal([]);
    });

    it("refuses windows longer than the retention with invalid_request", async () => {
      await expectInvalid(() => report(T0, DAY + 1));
      await expectInvalid(() => report(T0, 0));
      expect((await report(T0, DAY)).miners).to.deep.equal([]);
    });
  });
}

async function expectInvalid(fn: () => Promise<unknown>): Promise<void> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, "expected an invalid_request error").to.be.instanceOf(TensorClawError);
  expect((caught as TensorClawError).code).to.equal("invalid_request");
}
