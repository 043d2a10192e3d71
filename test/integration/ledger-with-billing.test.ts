import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import type { Redis } from "ioredis";
import { LedgerWithBilling } from "../../router/billing/ledger-with-billing.js";
import { RedisBilling } from "../../router/billing/redis.js";
import { RedisLedger } from "../../router/ledger/redis.js";
import type { UsageEvent } from "../../router/usage/event.js";
import { UsageRecorder } from "../../router/usage/recorder.js";
import { UsageSpool } from "../../router/usage/spool.js";
import { CONTRACT_OPTIONS } from "../support/ledger-contract.js";
import { writerEvent } from "../support/ledger-events.js";
import {
  type PersistentRedis,
  routerRedisClients,
  startPersistentRedis,
} from "../support/ledger-redis-server.js";
import { randomPrefix } from "../support/redis.js";

const KEYS = ["key_000000000000000a", "key_000000000000000b", "key_000000000000000c"];
const ORIGIN = "0123456789abcdef";

/** Request i: the final event of a request made with one of three keys, a cost of its own. */
function billed(i: number, nowMs: number): UsageEvent {
  return {
    ...writerEvent("p", i, nowMs, ORIGIN),
    paid: true,
    billing: {
      keyId: KEYS[i % KEYS.length] as string,
      costMicros: 1000 + ((i * 7919) % 100_003),
      holdMicros: 0,
      ttftMs: 50,
      finishReason: "stop",
      streamed: i % 2 === 0,
    },
  };
}

function expectedSpend(from: number, to: number): Map<string, number> {
  const out = new Map<string, number>();
  for (let i = from; i < to; i++) {
    const b = billed(i, 0).billing;
    if (b !== undefined) out.set(b.keyId, (out.get(b.keyId) ?? 0) + b.costMicros);
  }
  return out;
}

describe("ledger with billing, behind the usage recorder, against Redis killed and restarted", function () {
  this.timeout(60_000);
  let ledgerRedis: PersistentRedis;
  let billingRedis: PersistentRedis;
  let dir: string;
  const ledgerClients = routerRedisClients(() => ledgerRedis.url);
  const billingClients = routerRedisClients(() => billingRedis.url);
  before(async () => {
    ledgerRedis = await startPersistentRedis();
    billingRedis = await startPersistentRedis();
  });
  after(async () => {
    await ledgerRedis.stop();
    await billingRedis.stop();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-billing-recorder-"));
  });
  afterEach(async () => {
    ledgerClients.closeAll();
    billingClients.closeAll();
    await ledgerRedis.restart().catch(() => {});
    await billingRedis.restart().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  });

  /** Funds the first two keys (metered); the third stays unmetered. */
  async function fund(billing: RedisBilling, nowMs: number): Promise<void> {
    for (const keyId of KEYS.slice(0, 2)) {
      await billing.configure(keyId, { metered: true, budgetDailyMicros: null }, nowMs);
      await billing.credit({
        id: "fund",
        keyId,
        amountMicros: 1e12,
        note: "",
        source: "operator",
        atMs: nowMs,
      });
    }
  }

  async function expectCharged(billing: RedisBilling, n: number, nowMs: number): Promise<void> {
    const want = expectedSpend(0, n);
    for (const [i, keyId] of KEYS.entries()) {
      const v = await billing.account(keyId, nowMs);
      expect(v.spentTotalMicros, keyId).to.equal(want.get(keyId));
      expect(v.spentTodayMicros + v.spent24hMicros, keyId).to.equal(2 * (want.get(keyId) ?? 0));
      expect(v.balanceMicros, keyId).to.equal(i < 2 ? 1e12 - (want.get(keyId) ?? 0) : 0);
      expect(v.todayByModel.reduce((s, m) => s + m.requests, 0)).to.equal(n / KEYS.length);
    }
  }

  async function setUp(client: () => Promise<Redis>, billingClient: () => Promise<Redis>) {
    const prefix = randomPrefix();
    const inner = new RedisLedger(await client(), CONTRACT_OPTIONS, prefix);
    const billing = new RedisBilling(await billingClient(), CONTRACT_OPTIONS, prefix);
    await fund(billing, Date.now());
    const spool = await UsageSpool.open({ dir });
    const recorder = new UsageRecorder({
      ledger: new LedgerWithBilling(inner, billing),
      spool,
      retryMinMs: 10,
      retryMaxMs: 100,
    });
    return { inner, billing, spool, recorder };
  }

  it("one Redis for both, killed mid-traffic: events spooled and replayed, each request charged once", async () => {
    const { inner, billing, spool, recorder } = await setUp(
      () => ledgerClients.open(),
      () => ledgerClients.open(),
    );
    const N = 3000;
    for (let i = 0; i < N; i += 300) {
      if (i === 900) await ledgerRedis.kill();
      if (i === 2100) {
        expect(recorder.stats().degraded).to.equal(true);
        await ledgerRedis.restart();
      }
      for (let j = i; j < i + 300; j++) recorder.record(billed(j, Date.now()));
      await recorder.settled();
    }
    // A re-delivery of requests already charged (a second router's replay, say) charges nothing.
    for (let j = 0; j < 300; j++) recorder.record(billed(j, Date.now()));
    await recorder.idle();
    const stats = recorder.stats();
    expect(stats.spooled).to.be.greaterThan(1000);
    expect(stats.replayed).to.equal(stats.spooled);
    // Every event reached the ledger once; the re-delivered ones (and any batch cut between
    // the two stores by the kill) came back as duplicates.
    expect(stats.counted + stats.duplicates).to.equal(N + 300);
    expect(stats.duplicates).to.be.at.least(300);
    await expectCharged(billing, N, Date.now());
    const report = await inner.usage({ nowMs: Date.now(), windowMs: CONTRACT_OPTIONS.retentionMs });
    expect(report.miners.reduce((n, m) => n + m.requests, 0)).to.equal(N);
    await recorder.close();
    await spool.close();
  });

  it("billing down while the miner ledger is up: the batch is spooled and the replay charges once", async () => {
    const { inner, billing, spool, recorder } = await setUp(
      () => ledgerClients.open(),
      () => billingClients.open(),
    );
    const N = 1200;
    for (let i = 0; i < N; i += 300) {
      if (i === 300) await billingRedis.kill();
      if (i === 900) {
        // The miner ledger took the batches; billing refused them, so they were spooled.
        expect(recorder.stats().degraded).to.equal(true);
        expect(recorder.spoolDepth()).to.be.greaterThan(0);
        await billingRedis.restart();
      }
      for (let j = i; j < i + 300; j++) recorder.record(billed(j, Date.now()));
      await recorder.settled();
    }
    await recorder.idle();
    const stats = recorder.stats();
    expect(stats.replayed).to.equal(stats.spooled);
    // The miner ledger had counted the first refused batch before billing failed: its
    // replay is the ledger's duplicates (later events went straight to the spool).
    expect(stats.counted + stats.duplicates).to.equal(N);
    expect(stats.duplicates).to.be.greaterThan(0).and.at.most(stats.replayed);
    await expectCharged(billing, N, Date.now());
    const report = await inner.usage({ nowMs: Date.now(), windowMs: CONTRACT_OPTIONS.retentionMs });
    expect(report.miners.reduce((n, m) => n + m.requests, 0)).to.equal(N);
    await recorder.close();
    await spool.close();
  });
});
