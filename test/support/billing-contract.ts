import { expect } from "chai";
import { seededRandom } from "../../common/seeded-random.js";
import type { AccountView, BillingStore, ModelSpend } from "../../router/billing/billing.js";
import { DAY_MS, GENERATION_TTL_MS, utcDay } from "../../router/billing/billing.js";
import { windowEdges } from "../../router/ledger/ledger.js";
import type { EventBilling, UsageEvent } from "../../router/usage/event.js";
import { CONTRACT_OPTIONS } from "./ledger-contract.js";

/** Builds a fresh, empty billing store for one test, and can reopen the same store. */
export interface BillingHarness {
  readonly store: BillingStore;
  /** Closes this store and opens the same data again (a router restart). */
  reopen(nowMs: number): Promise<BillingStore>;
  /** Releases everything. */
  dispose(): Promise<void>;
}

/** Options every contract case uses (the ledger's: one-minute buckets, 24 h). */
export const BILLING_OPTIONS = CONTRACT_OPTIONS;

const HOUR = 3_600_000;
const MIN = 60_000;
/** 2025-11-24 00:00 UTC, a Monday. */
export const MONDAY = Date.UTC(2025, 10, 24);
/** Thursday 2025-11-27 21:00 UTC: this week is Mon 24 .. Thu 27, this month Nov 1 .. 27. */
export const NOW = MONDAY + 3 * DAY_MS + 21 * HOUR;

let counter = 0;

/** The final usage event of one request made with `keyId`. */
export function billedEvent(
  keyId: string,
  costMicros: number,
  over: Omit<Partial<UsageEvent>, "billing"> & { billing?: Partial<EventBilling> } = {},
): UsageEvent {
  counter++;
  const { billing, ...rest } = over;
  const finishedAtMs = rest.finishedAtMs ?? NOW;
  return {
    requestId: `req-${counter}-${Math.random().toString(36).slice(2, 8)}`,
    minerHotkey: "miner-a",
    model: "model-x",
    promptTokens: 100,
    completionTokens: 50,
    outcome: "completed",
    startedAtMs: finishedAtMs - 1500,
    finishedAtMs,
    paid: true,
    ...rest,
    billing: {
      keyId,
      costMicros,
      holdMicros: 0,
      ttftMs: 120,
      finishReason: "stop",
      streamed: true,
      ...billing,
    },
  };
}

function randomKey(): string {
  return `key_${Math.random().toString(16).slice(2, 10).padEnd(16, "0")}`;
}

/** What an account must hold after settling `events` of one key at NOW (computed independently). */
function expectedSpend(events: readonly UsageEvent[], nowMs: number) {
  const today = utcDay(nowMs);
  const weekStart = utcDay(MONDAY);
  const monthStart = utcDay(Date.UTC(2025, 10, 1));
  const { startMs, endMs } = windowEdges(nowMs, BILLING_OPTIONS.retentionMs, BILLING_OPTIONS.bucketMs);
  const out = { today: 0, h24: 0, week: 0, month: 0, d30: 0, total: 0 };
  const todayBy = new Map<string, ModelSpend>();
  const d30By = new Map<string, ModelSpend>();
  const add = (m: Map<string, ModelSpend>, e: UsageEvent) => {
    const c = m.get(e.model);
    m.set(e.model, {
      model: e.model,
      promptTokens: (c?.promptTokens ?? 0) + e.promptTokens,
      completionTokens: (c?.completionTokens ?? 0) + e.completionTokens,
      requests: (c?.requests ?? 0) + 1,
      costMicros: (c?.costMicros ?? 0) + (e.billing?.costMicros ?? 0),
    });
  };
  for (const e of events) {
    const cost = e.billing?.costMicros ?? 0;
    const day = utcDay(e.finishedAtMs);
    const bucket = e.finishedAtMs - (e.finishedAtMs % BILLING_OPTIONS.bucketMs);
    out.total += cost;
    if (day === today) {
      out.today += cost;
      add(todayBy, e);
    }
    if (bucket >= startMs && bucket < endMs) out.h24 += cost;
    if (day >= weekStart) out.week += cost;
    if (day >= monthStart) out.month += cost;
    if (day >= today - 29) {
      out.d30 += cost;
      add(d30By, e);
    }
  }
  const sorted = (m: Map<string, ModelSpend>) =>
    [...m.values()].sort((a, b) => b.costMicros - a.costMicros || (a.model < b.model ? -1 : 1));
  return { ...out, todayByModel: sorted(todayBy), last30dByModel: sorted(d30By) };
}

function spendOf(v: AccountView) {
  return {
    today: v.spentTodayMicros,
    h24: v.spent24hMicros,
    week: v.spentWeekMicros,
    month: v.spentMonthMicros,
    d30: v.spent30dMicros,
    total: v.spentTotalMicros,
    todayByModel: v.todayByModel,
    last30dByModel: v.last30dByModel,
  };
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<void> {
  let err: unknown;
  try {
    await p;
  } catch (e) {
    err = e;
  }
  expect(err, `expected a ${code} error`).to.have.property("code", code);
}

/**
 * The billing-store contract: one suite, run against every implementation.
 * `make` is called once per test and must return an empty store with
 * BILLING_OPTIONS.
 */
/**
 * The billing store contract. `make` builds a fresh store; given a
 * generation retention (ms), the store keeps records that long instead of
 * the default 30 days.
 */
export function billingContract(
  name: string,
  make: (generationRetentionMs?: number) => Promise<BillingHarness>,
): void {
  describe(`billing store contract: ${name}`, function () {
    this.timeout(30_000);
    let h: BillingHarness;
    let store: BillingStore;
    beforeEach(async () => {
      h = await make();
      store = h.store;
    });
    afterEach(async () => {
      await h.dispose();
    });

    const metered = { metered: true, budgetDailyMicros: null };
    const fund = async (keyId: string, amountMicros: number, atMs = NOW) => {
      await store.configure(keyId, metered, atMs);
      expect(
        await store.credit({ id: `fund-${keyId}`, keyId, amountMicros, note: "", source: "operator", atMs }),
      ).to.equal(true);
    };

    it("spends exactly the sum of per-request costs, to the micro, per span and per model", async () => {
      const rand = seededRandom(16);
      const key = randomKey();
      const other = randomKey();
      await fund(key, 1_000_000_000_000);
      const models = ["m-large", "m-small", "m-mid", "m-code"];
      const events: UsageEvent[] = [];
      for (let i = 0; i < 600; i++) {
        // Spread over the last 29 days (older finals could no longer be settled), denser recently.
        const ago = Math.floor(rand() ** 3 * 29 * DAY_MS);
        events.push(
          billedEvent(key, Math.floor(rand() * 5_000_000) + (i % 7 === 0 ? 1e9 + 7 : 0), {
            model: models[Math.floor(rand() * models.length)] as string,
            finishedAtMs: NOW - ago,
            promptTokens: Math.floor(rand() * 4000),
            completionTokens: Math.floor(rand() * 2000),
          }),
        );
      }
      const others = [billedEvent(other, 999_999, { finishedAtMs: NOW - 5 * MIN })];
      for (let i = 0; i < events.length; i += 75) {
        const r = await store.settle([...events.slice(i, i + 75), ...others], NOW);
        expect(r.settled + r.duplicates).to.equal(Math.min(75, events.length - i) + 1);
      }
      const want = expectedSpend(events, NOW);
      const view = await store.account(key, NOW);
      expect(spendOf(view)).to.deep.equal(want);
      const sum = events.reduce((n, e) => n + (e.billing?.costMicros ?? 0), 0);
      expect(view.spentTotalMicros).to.equal(sum);
      expect(view.balanceMicros).to.equal(1_000_000_000_000 - sum);
      expect(view.creditedMicros).to.equal(1_000_000_000_000);
      // The spans really differ here (a test of the spans, not of one number).
      expect(new Set([want.today, want.h24, want.week, want.month, want.d30]).size).to.equal(5);
      // The other key's spend is its own.
      expect((await store.account(other, NOW)).spentTotalMicros).to.equal(999_999);
      // Same after a restart.
      store = await h.reopen(NOW);
      expect(spendOf(await store.account(key, NOW))).to.deep.equal(want);
      const days = await store.daily(key, NOW);
      expect(days.reduce((n, d) => n + d.costMicros, 0)).to.equal(sum);
      expect(days.reduce((n, d) => n + d.requests, 0)).to.equal(events.length);
      expect(days.map((d) => d.dayStartMs)).to.deep.equal(
        [...days.map((d) => d.dayStartMs)].sort((a, b) => a - b),
      );
    });

    it("holds: balance minus active holds must cover the amount; release and expiry free it", async () => {
      const key = randomKey();
      await fund(key, 1000);
      const hold = (requestId: string, amountMicros: number, nowMs = NOW, ttlMs = 60_000) =>
        store.hold({ keyId: key, requestId, amountMicros, nowMs, ttlMs });
      expect(await hold("a", 600)).to.deep.equal({ ok: true });
      expect(await hold("b", 500)).to.deep.equal({ ok: false, reason: "credits", availableMicros: 400 });
      // The same request asking again holds nothing more.
      expect(await hold("a", 600)).to.deep.equal({ ok: true });
      expect(await hold("c", 400)).to.deep.equal({ ok: true });
      expect((await store.account(key, NOW)).heldMicros).to.equal(1000);
      expect(await hold("d", 1)).to.deep.equal({ ok: false, reason: "credits", availableMicros: 0 });
      await store.release(key, "a", NOW);
      expect((await store.account(key, NOW)).heldMicros).to.equal(400);
      expect(await hold("e", 600)).to.deep.equal({ ok: true });
      // Holds expire at now + ttl: "c" and "e" (60 s) are gone then, and not a ms before.
      expect((await store.account(key, NOW + 59_999)).heldMicros).to.equal(1000);
      expect(await hold("f", 1, NOW + 59_999)).to.include({ ok: false });
      expect((await store.account(key, NOW + 60_000)).heldMicros).to.equal(0);
      expect(await hold("g", 1000, NOW + 60_000)).to.deep.equal({ ok: true });
      // Holds never touch the balance itself.
      expect((await store.account(key, NOW + 60_000)).balanceMicros).to.equal(1000);
    });

    it("holds: a daily budget counts today's spend and active holds, and resets on the next UTC day", async () => {
      const key = randomKey();
      await store.configure(key, { metered: true, budgetDailyMicros: 1000 }, NOW);
      await store.credit({
        id: "c1",
        keyId: key,
        amountMicros: 10_000,
        note: "",
        source: "operator",
        atMs: NOW,
      });
      await store.settle([billedEvent(key, 700, { finishedAtMs: NOW - HOUR })], NOW);
      // Yesterday's spend does not count against today's budget.
      await store.settle([billedEvent(key, 5000, { finishedAtMs: NOW - DAY_MS })], NOW);
      const hold = (requestId: string, amountMicros: number, nowMs = NOW) =>
        store.hold({ keyId: key, requestId, amountMicros, nowMs, ttlMs: DAY_MS });
      expect(await hold("a", 301)).to.deep.equal({ ok: false, reason: "budget", availableMicros: 300 });
      expect(await hold("a", 300)).to.deep.equal({ ok: true });
      expect(await hold("b", 1)).to.deep.equal({ ok: false, reason: "budget", availableMicros: 0 });
      const tomorrow = MONDAY + 4 * DAY_MS;
      // "a" (300) is still held tomorrow; today's spend is new.
      expect(await hold("b", 701, tomorrow)).to.deep.equal({
        ok: false,
        reason: "budget",
        availableMicros: 700,
      });
      expect(await hold("b", 700, tomorrow)).to.deep.equal({ ok: true });
      // The tighter limit decides what is available: credits left 4300 - 1000 held.
      await store.configure(key, { metered: true, budgetDailyMicros: 1_000_000 }, tomorrow);
      expect(await hold("c", 4000, tomorrow)).to.deep.equal({
        ok: false,
        reason: "credits",
        availableMicros: 3300,
      });
      // An unmetered key with a budget: only the budget limits it.
      const free = randomKey();
      await store.configure(free, { metered: false, budgetDailyMicros: 50 }, NOW);
      expect(
        await store.hold({ keyId: free, requestId: "x", amountMicros: 50, nowMs: NOW, ttlMs: 1000 }),
      ).to.deep.equal({
        ok: true,
      });
      expect(
        await store.hold({ keyId: free, requestId: "y", amountMicros: 1, nowMs: NOW, ttlMs: 1000 }),
      ).to.include({
        ok: false,
        reason: "budget",
      });
    });

    it("holds on a key without an account always pass and hold nothing", async () => {
      const key = randomKey();
      for (let i = 0; i < 5; i++) {
        expect(
          await store.hold({ keyId: key, requestId: `r${i}`, amountMicros: 1e12, nowMs: NOW, ttlMs: 1000 }),
        ).to.deep.equal({ ok: true });
      }
      const v = await store.account(key, NOW);
      expect(v).to.include({ settings: undefined, heldMicros: 0, balanceMicros: 0 });
      expect(await store.settings(key)).to.equal(undefined);
      // Their spend is still recorded.
      await store.settle([billedEvent(key, 42)], NOW);
      expect(await store.account(key, NOW)).to.include({ spentTodayMicros: 42, balanceMicros: 0 });
    });

    it("100 concurrent holds against a balance covering exactly 10: exactly 10 succeed", async () => {
      const key = randomKey();
      await fund(key, 10 * 1234);
      const results = await Promise.all(
        Array.from({ length: 100 }, (_, i) =>
          store.hold({ keyId: key, requestId: `r${i}`, amountMicros: 1234, nowMs: NOW, ttlMs: 60_000 }),
        ),
      );
      expect(results.filter((r) => r.ok)).to.have.length(10);
      for (const r of results.filter((x) => !x.ok)) {
        expect(r).to.deep.equal({ ok: false, reason: "credits", availableMicros: 0 });
      }
      expect((await store.account(key, NOW)).heldMicros).to.equal(12_340);
    });

    it("settling requests drawn from a shared hold (a lease) shrinks it by their costs, once each", async () => {
      const key = randomKey();
      await fund(key, 100_000);
      const lease = { keyId: key, requestId: "lease:a:1", amountMicros: 60_000, nowMs: NOW, ttlMs: 60_000 };
      expect(await store.hold(lease)).to.deep.equal({ ok: true });
      const evs = [700, 1300, 0].map((cost) =>
        billedEvent(key, cost, { billing: { holdMicros: 2000, holdId: lease.requestId } }),
      );
      expect(await store.settle(evs, NOW)).to.deep.equal({ settled: 3, duplicates: 0, ignored: 0 });
      let a = await store.account(key, NOW);
      // The costs left the balance and the lease alike, so balance − holds is what the key has left.
      expect(a).to.include({ balanceMicros: 98_000, heldMicros: 58_000, spentTotalMicros: 2000 });
      expect(await store.settle(evs, NOW)).to.include({ settled: 0, duplicates: 3 });
      expect((await store.account(key, NOW)).heldMicros).to.equal(58_000);
      // A lease never goes below zero, whatever its requests cost; releasing it frees what is left.
      expect(
        await store.settle([billedEvent(key, 70_000, { billing: { holdId: lease.requestId } })], NOW),
      ).to.include({
        settled: 1,
      });
      a = await store.account(key, NOW);
      expect(a).to.include({ balanceMicros: 28_000, heldMicros: 0 });
      await store.release(key, lease.requestId, NOW);
      expect((await store.account(key, NOW)).heldMicros).to.equal(0);
      expect(await store.hold({ ...lease, requestId: "lease:a:2", amountMicros: 28_000 })).to.deep.equal({
        ok: true,
      });
    });

    it("settles once per request: replays, a batch re-delivered after a restart, duplicates in one batch", async () => {
      const key = randomKey();
      await fund(key, 1_000_000);
      const evs = Array.from({ length: 20 }, (_, i) => billedEvent(key, 1000 + i, { model: `m${i % 3}` }));
      expect(await store.settle(evs, NOW)).to.deep.equal({ settled: 20, duplicates: 0, ignored: 0 });
      const once = await store.account(key, NOW);
      expect(once.balanceMicros).to.equal(1_000_000 - 20 * 1000 - 190);
      expect(await store.settle(evs.slice(5), NOW + MIN)).to.deep.equal({
        settled: 0,
        duplicates: 15,
        ignored: 0,
      });
      const first = evs[0] as UsageEvent;
      expect(await store.settle([first, first], NOW)).to.deep.equal({
        settled: 0,
        duplicates: 2,
        ignored: 0,
      });
      store = await h.reopen(NOW + HOUR);
      expect(await store.settle(evs, NOW + HOUR)).to.deep.equal({ settled: 0, duplicates: 20, ignored: 0 });
      // Even with a changed cost: the request id decides.
      const changed = { ...first, billing: { ...(first.billing as EventBilling), costMicros: 1 } };
      expect(await store.settle([changed], NOW + HOUR)).to.include({ duplicates: 1 });
      const fresh = billedEvent(key, 5, { finishedAtMs: NOW + HOUR });
      expect(await store.settle([fresh, fresh], NOW + HOUR)).to.deep.equal({
        settled: 1,
        duplicates: 1,
        ignored: 0,
      });
      const after = await store.account(key, NOW + HOUR);
      expect(after.balanceMicros).to.equal(once.balanceMicros - 5);
      expect(after.spentTotalMicros).to.equal(once.spentTotalMicros + 5);
      expect(after.todayByModel.reduce((n, m) => n + m.requests, 0)).to.equal(21);
    });

    it("settling removes the request's hold and charges the real cost, not the hold", async () => {
      const key = randomKey();
      await fund(key, 10_000);
      expect(
        await store.hold({ keyId: key, requestId: "req-1", amountMicros: 8000, nowMs: NOW, ttlMs: 60_000 }),
      ).to.deep.equal({ ok: true });
      expect(
        await store.hold({ keyId: key, requestId: "req-2", amountMicros: 2001, nowMs: NOW, ttlMs: 60_000 }),
      ).to.include({ ok: false, availableMicros: 2000 });
      const e = billedEvent(key, 1234, { requestId: "req-1", billing: { holdMicros: 8000 } });
      expect(await store.settle([e], NOW + 1000)).to.include({ settled: 1 });
      const v = await store.account(key, NOW + 1000);
      expect(v).to.include({ heldMicros: 0, balanceMicros: 10_000 - 1234, spentTodayMicros: 1234 });
      expect(
        await store.hold({
          keyId: key,
          requestId: "req-2",
          amountMicros: 8766,
          nowMs: NOW + 1000,
          ttlMs: 60_000,
        }),
      ).to.deep.equal({ ok: true });
      // A late release of a settled request changes nothing.
      await store.release(key, "req-1", NOW + 2000);
      expect((await store.account(key, NOW + 2000)).heldMicros).to.equal(8766);
    });

    it("credits: applied once per entry id, logged newest first, negative corrections, never overwritten", async () => {
      const key = randomKey();
      await store.configure(key, metered, NOW);
      const entry = (id: string, amountMicros: number, atMs: number, note = "") => ({
        id,
        keyId: key,
        amountMicros,
        note,
        source: "operator" as const,
        atMs,
      });
      expect(await store.credit(entry("e1", 5_000_000, NOW, "first top-up"))).to.equal(true);
      expect(await store.credit(entry("e1", 9_000_000, NOW + 1, "same id again"))).to.equal(false);
      expect(await store.credit(entry("e2", -1_500_000, NOW + 2, "correction: double charge"))).to.equal(
        true,
      );
      expect(
        await store.credit({ ...entry("tao:0xabc:3", 2_000_000, NOW + 3, "deposit"), source: "deposit" }),
      ).to.equal(true);
      const v = await store.account(key, NOW + 3);
      expect(v).to.include({ balanceMicros: 5_500_000, creditedMicros: 5_500_000 });
      const log = await store.entries(key, 10);
      expect(log.map((e) => [e.id, e.amountMicros, e.note, e.source])).to.deep.equal([
        ["tao:0xabc:3", 2_000_000, "deposit", "deposit"],
        ["e2", -1_500_000, "correction: double charge", "operator"],
        ["e1", 5_000_000, "first top-up", "operator"],
      ]);
      expect((await store.entries(key, 2)).map((e) => e.id)).to.deep.equal(["tao:0xabc:3", "e2"]);
      // Entry ids are per key: another key may use the same id.
      const other = randomKey();
      expect(await store.credit({ ...entry("e1", 7, NOW), keyId: other })).to.equal(true);
      store = await h.reopen(NOW + 4);
      expect(await store.credit(entry("e1", 5_000_000, NOW + 5))).to.equal(false);
      expect((await store.account(key, NOW + 5)).balanceMicros).to.equal(5_500_000);
      expect((await store.entries(key, 10)).map((e) => e.id)).to.deep.equal(["tao:0xabc:3", "e2", "e1"]);
      expect(await store.entries(other, 10)).to.have.length(1);
      // Malformed entries are refused.
      await rejectsWith(store.credit(entry("e9", 0.5, NOW)), "invalid_request");
      await rejectsWith(store.credit(entry("e9", 0, NOW)), "invalid_request");
      await rejectsWith(store.credit({ ...entry("e9", 5, NOW), keyId: "no spaces" }), "invalid_request");
      await rejectsWith(store.credit(entry("e9", 1e16, NOW)), "invalid_request");
    });

    it("generation records: readable only with the owning key id, until 30 days after the request", async () => {
      const key = randomKey();
      const other = randomKey();
      const e = billedEvent(key, 4321, {
        requestId: "chatcmpl-abc",
        model: "m-gen",
        promptTokens: 11,
        completionTokens: 22,
        startedAtMs: NOW - 2500,
        finishedAtMs: NOW,
        outcome: "completed",
        billing: { ttftMs: 180, finishReason: "length", streamed: false },
      });
      await store.settle([e], NOW);
      const want = {
        id: "chatcmpl-abc",
        keyId: key,
        model: "m-gen",
        promptTokens: 11,
        completionTokens: 22,
        costMicros: 4321,
        createdAtMs: NOW - 2500,
        ttftMs: 180,
        latencyMs: 2500,
        finishReason: "length",
        streamed: false,
        outcome: "completed",
      };
      expect(await store.generation(key, "chatcmpl-abc", NOW)).to.deep.equal(want);
      expect(await store.generation(other, "chatcmpl-abc", NOW)).to.equal(undefined);
      expect(await store.generation(key, "chatcmpl-other", NOW)).to.equal(undefined);
      // A failed request without a first token.
      const failed = billedEvent(key, 0, {
        outcome: "failed",
        billing: { ttftMs: null, finishReason: null },
      });
      await store.settle([failed], NOW);
      expect(await store.generation(key, failed.requestId, NOW)).to.include({
        ttftMs: null,
        finishReason: null,
      });
      store = await h.reopen(NOW + GENERATION_TTL_MS - 1);
      expect(await store.generation(key, "chatcmpl-abc", NOW + GENERATION_TTL_MS - 1)).to.deep.equal(want);
      expect(await store.generation(key, "chatcmpl-abc", NOW + GENERATION_TTL_MS)).to.equal(undefined);
      // Too old to settle any more: refused, so a very late replay cannot charge twice.
      expect(await store.settle([e], NOW + GENERATION_TTL_MS)).to.deep.equal({
        settled: 0,
        duplicates: 0,
        ignored: 1,
      });
    });

    it("keeps generation records for the retention it was given, and refuses events older than it", async () => {
      await h.dispose();
      h = await make(HOUR);
      store = h.store;
      const key = randomKey();
      const e = billedEvent(key, 500);
      expect(await store.settle([e], NOW)).to.deep.include({ settled: 1 });
      expect((await store.generation(key, e.requestId, NOW + HOUR - 1))?.costMicros).to.equal(500);
      store = await h.reopen(NOW + HOUR - 1);
      expect((await store.generation(key, e.requestId, NOW + HOUR - 1))?.costMicros).to.equal(500);
      expect(await store.generation(key, e.requestId, NOW + HOUR)).to.equal(undefined);
      // The record was its settled marker: past the retention a replay is refused, not charged again.
      expect(await store.settle([e], NOW + HOUR)).to.deep.equal({ settled: 0, duplicates: 0, ignored: 1 });
      expect((await store.account(key, NOW + HOUR)).spentTotalMicros).to.equal(500);
      // A record settled late lives its retention from its request's finish, not from the settling.
      const late = billedEvent(key, 7, { finishedAtMs: NOW + HOUR });
      await store.settle([late], NOW + HOUR + 30 * MIN);
      expect(await store.generation(key, late.requestId, NOW + 2 * HOUR - 1)).to.not.equal(undefined);
      expect(await store.generation(key, late.requestId, NOW + 2 * HOUR)).to.equal(undefined);
    });

    it("generation records keep the app a request named (referer and title), across a restart", async () => {
      const key = randomKey();
      const both = billedEvent(key, 10, {
        billing: { app: { referer: "https://app.example/chat", title: 'My "quoted" app ✓' } },
      });
      const titleOnly = billedEvent(key, 10, { billing: { app: { title: "cli" } } });
      const none = billedEvent(key, 10);
      await store.settle([both, titleOnly, none], NOW);
      const check = async () => {
        expect((await store.generation(key, both.requestId, NOW))?.app).to.deep.equal({
          referer: "https://app.example/chat",
          title: 'My "quoted" app ✓',
        });
        expect((await store.generation(key, titleOnly.requestId, NOW))?.app).to.deep.equal({ title: "cli" });
        const plain = await store.generation(key, none.requestId, NOW);
        expect(plain).not.to.equal(undefined);
        expect(plain).not.to.have.property("app");
      };
      await check();
      store = await h.reopen(NOW);
      await check();
    });

    it("recent generations: newest first, at most the limit (capped at 100), only the caller's", async () => {
      const key = randomKey();
      const other = randomKey();
      // Settled out of order, in two batches: the list orders by start time, not by settling.
      const evs = Array.from({ length: 7 }, (_, i) =>
        billedEvent(key, 100 + i, { model: `m${i}`, finishedAtMs: NOW - (7 - i) * MIN }),
      );
      await store.settle([evs[4], evs[1], evs[6], evs[0]] as UsageEvent[], NOW);
      await store.settle([evs[3], evs[5], evs[2]] as UsageEvent[], NOW);
      await store.settle([billedEvent(other, 999, { finishedAtMs: NOW })], NOW);
      const newest = [...evs].reverse().map((e) => e.requestId);
      const ids = async (k: string, limit: number, nowMs = NOW) =>
        (await store.recentGenerations(k, limit, nowMs)).map((g) => g.id);
      expect(await ids(key, 10)).to.deep.equal(newest);
      expect(await ids(key, 3)).to.deep.equal(newest.slice(0, 3));
      expect(await ids(key, 0)).to.deep.equal(newest.slice(0, 1));
      // The same records /api/v1/generation reads, one by one.
      const [top] = await store.recentGenerations(key, 1, NOW);
      expect(top).to.deep.equal(await store.generation(key, newest[0] as string, NOW));
      expect(top).to.include({ keyId: key, model: "m6", costMicros: 106 });
      expect(await ids(randomKey(), 10)).to.deep.equal([]);
      expect((await store.recentGenerations(other, 10, NOW)).map((g) => g.keyId)).to.deep.equal([other]);
      // 130 more: only the newest 100 are listed, whatever the limit asked.
      const many = Array.from({ length: 130 }, (_, i) => billedEvent(key, 1, { finishedAtMs: NOW + i }));
      await store.settle(many.slice(0, 60), NOW + 200);
      await store.settle(many.slice(60), NOW + 200);
      const top100 = [...many]
        .reverse()
        .slice(0, 100)
        .map((e) => e.requestId);
      expect(await ids(key, 1000, NOW + 200)).to.deep.equal(top100);
      store = await h.reopen(NOW + 300);
      expect(await ids(key, 1000, NOW + 300)).to.deep.equal(top100);
      expect(await ids(other, 10, NOW + 300)).to.have.length(1);
    });

    it("recent generations: a replayed settle is listed once; records leave the list when they expire", async () => {
      const key = randomKey();
      const old = billedEvent(key, 10, { finishedAtMs: NOW - HOUR });
      const recent = billedEvent(key, 20, { finishedAtMs: NOW });
      await store.settle([old, recent], NOW);
      await store.settle([old, recent, old], NOW + MIN);
      store = await h.reopen(NOW + MIN);
      await store.settle([recent], NOW + MIN);
      const ids = async (nowMs: number) => (await store.recentGenerations(key, 100, nowMs)).map((g) => g.id);
      expect(await ids(NOW + MIN)).to.deep.equal([recent.requestId, old.requestId]);
      // Kept until 30 days after each request finished, as /api/v1/generation reads them.
      expect(await ids(NOW - HOUR + GENERATION_TTL_MS - 1)).to.deep.equal([recent.requestId, old.requestId]);
      expect(await ids(NOW - HOUR + GENERATION_TTL_MS)).to.deep.equal([recent.requestId]);
      expect(await ids(NOW + GENERATION_TTL_MS)).to.deep.equal([]);
      // A request settled after the others expired is listed alone.
      const later = billedEvent(key, 30, { finishedAtMs: NOW + GENERATION_TTL_MS });
      await store.settle([later], NOW + GENERATION_TTL_MS);
      expect(await ids(NOW + GENERATION_TTL_MS)).to.deep.equal([later.requestId]);
    });

    it("a bucket older than 24 h leaves the 24 h figure but stays in the day totals", async () => {
      const key = randomKey();
      const t = MONDAY + 3 * DAY_MS + 10 * MIN; // Thursday 00:10
      await store.settle([billedEvent(key, 100, { finishedAtMs: t })], t);
      expect(await store.account(key, t)).to.include({ spent24hMicros: 100, spentTodayMicros: 100 });
      const { startMs } = windowEdges(t + DAY_MS - 1, BILLING_OPTIONS.retentionMs, BILLING_OPTIONS.bucketMs);
      expect(startMs).to.be.at.most(t);
      expect((await store.account(key, t + DAY_MS - 1)).spent24hMicros).to.equal(100);
      // One bucket later the event's bucket is out of the window.
      const later = t + DAY_MS + MIN;
      await store.settle([billedEvent(key, 7, { finishedAtMs: later })], later);
      const v = await store.account(key, later);
      expect(v).to.include({
        spent24hMicros: 7,
        spentTodayMicros: 7,
        spentWeekMicros: 107,
        spentMonthMicros: 107,
        spent30dMicros: 107,
        spentTotalMicros: 107,
      });
      expect(v.last30dByModel).to.deep.equal([
        { model: "model-x", promptTokens: 200, completionTokens: 100, requests: 2, costMicros: 107 },
      ]);
      store = await h.reopen(later);
      expect(await store.account(key, later)).to.include({ spent24hMicros: 7, spent30dMicros: 107 });
    });

    it("keeps day totals for 90 days and trims older ones; the all-time total stays", async () => {
      const key = randomKey();
      const d0 = MONDAY + 12 * HOUR;
      await store.settle([billedEvent(key, 11, { finishedAtMs: d0 })], d0);
      const d89 = d0 + 89 * DAY_MS;
      await store.settle([billedEvent(key, 22, { finishedAtMs: d89 })], d89);
      expect((await store.daily(key, d89)).map((d) => [d.dayStartMs, d.costMicros])).to.deep.equal([
        [MONDAY, 11],
        [MONDAY + 89 * DAY_MS, 22],
      ]);
      const d90 = d0 + 90 * DAY_MS;
      await store.settle([billedEvent(key, 33, { finishedAtMs: d90 })], d90);
      store = await h.reopen(d90);
      expect((await store.daily(key, d90)).map((d) => [d.dayStartMs, d.costMicros])).to.deep.equal([
        [MONDAY + 89 * DAY_MS, 22],
        [MONDAY + 90 * DAY_MS, 33],
      ]);
      expect((await store.account(key, d90)).spentTotalMicros).to.equal(66);
    });

    it("keeps settings, balances, records and cursors across a restart", async () => {
      const key = randomKey();
      await store.configure(key, { metered: true, budgetDailyMicros: 2_000_000 }, NOW);
      await store.credit({
        id: "x",
        keyId: key,
        amountMicros: 10_000_000,
        note: "n",
        source: "operator",
        atMs: NOW,
      });
      await store.settle([billedEvent(key, 250_000)], NOW);
      expect(await store.cursor("deposits")).to.equal(undefined);
      await store.setCursor("deposits", "1234:0xabc");
      await store.setCursor("deposits", "1240:0xdef");
      await store.setCursor("other", "x");
      const before = await store.account(key, NOW);
      store = await h.reopen(NOW + 1);
      expect(await store.settings(key)).to.deep.equal({ metered: true, budgetDailyMicros: 2_000_000 });
      expect(await store.account(key, NOW)).to.deep.equal(before);
      expect(before).to.include({ balanceMicros: 9_750_000, spentTodayMicros: 250_000 });
      expect(await store.cursor("deposits")).to.equal("1240:0xdef");
      expect(await store.cursor("other")).to.equal("x");
      // Settings change, the balance does not.
      await store.configure(key, { metered: false, budgetDailyMicros: null }, NOW + 2);
      expect(await store.settings(key)).to.deep.equal({ metered: false, budgetDailyMicros: null });
      expect((await store.account(key, NOW + 2)).balanceMicros).to.equal(9_750_000);
      // Unmetered now: a settled cost is spend, not a charge.
      await store.settle([billedEvent(key, 1)], NOW + 2);
      expect(await store.account(key, NOW + 2)).to.include({
        balanceMicros: 9_750_000,
        spentTotalMicros: 250_001,
      });
    });

    it("ignores malformed and unbilled events and never lets them change state", async () => {
      const key = randomKey();
      await fund(key, 1_000_000);
      const good = billedEvent(key, 10);
      const bad: UsageEvent[] = [
        billedEvent("bad key!", 10),
        billedEvent(`k${"x".repeat(64)}`, 10),
        billedEvent(key, -5),
        billedEvent(key, Number.NaN),
        billedEvent(key, 1.5),
        billedEvent(key, Number.POSITIVE_INFINITY),
        billedEvent(key, 10, { billing: { holdMicros: -1 } }),
        billedEvent(key, 10, { billing: { ttftMs: "fast" as unknown as number } }),
        billedEvent(key, 10, { billing: { streamed: "yes" as unknown as boolean } }),
        billedEvent(key, 10, { billing: { finishReason: 7 as unknown as string } }),
        // A miner's finish reason or a model id with a tab would shift the fields of a compact record.
        billedEvent(key, 10, { billing: { finishReason: "stop\t0\tcompleted" } }),
        billedEvent(key, 10, { model: "model-x\t999" }),
        billedEvent(key, 10, { billing: { app: { title: "tab\there" } } }),
        billedEvent(key, 10, { billing: { app: { referer: "x".repeat(300) } } }),
        billedEvent(key, 10, { billing: { app: { title: 5 as unknown as string } } }),
        billedEvent(key, 10, { billing: { app: "app" as unknown as EventBilling["app"] } }),
        billedEvent(key, 10, { promptTokens: -1 }),
        billedEvent(key, 10, { completionTokens: Number.NaN }),
        billedEvent(key, 10, { requestId: "" }),
        billedEvent(key, 10, { requestId: "a\tb" }),
        billedEvent(key, 10, { model: "" }),
        billedEvent(key, 10, { outcome: "won" as UsageEvent["outcome"] }),
        billedEvent(key, 10, { finishedAtMs: -1 }),
        { ...billedEvent(key, 10), billing: undefined },
        { ...billedEvent(key, 10), billing: null as unknown as EventBilling },
        null as unknown as UsageEvent,
      ];
      expect(await store.settle([...bad, good], NOW)).to.deep.equal({
        settled: 1,
        duplicates: 0,
        ignored: bad.length,
      });
      expect(await store.account(key, NOW)).to.include({ balanceMicros: 999_990, spentTotalMicros: 10 });
      // The store still works, and after a restart too.
      store = await h.reopen(NOW);
      expect(await store.settle([billedEvent(key, 5)], NOW)).to.include({ settled: 1 });
      expect(await store.account(key, NOW)).to.include({ balanceMicros: 999_985 });
      // Malformed calls are refused with a precise error.
      await rejectsWith(store.configure("bad key", metered, NOW), "invalid_request");
      await rejectsWith(
        store.configure(key, { metered: true, budgetDailyMicros: -1 }, NOW),
        "invalid_request",
      );
      await rejectsWith(
        store.hold({ keyId: key, requestId: "r", amountMicros: -1, nowMs: NOW, ttlMs: 1 }),
        "invalid_request",
      );
      await rejectsWith(
        store.hold({ keyId: key, requestId: "r", amountMicros: Number.NaN, nowMs: NOW, ttlMs: 1 }),
        "invalid_request",
      );
      await rejectsWith(store.setCursor("", "x"), "invalid_request");
    });
  });
}
