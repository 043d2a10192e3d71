// `--redis-wait-replicas`: usage and settled charges count as written only
// once a replica has them, so a failover to that replica loses none of them.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { type BatchCall, runBatch } from "../../common/redis-batch.js";
import { openRedis, type RedisClient } from "../../common/redis-connect.js";
import { LedgerWithBilling } from "../../router/billing/ledger-with-billing.js";
import { RedisBilling } from "../../router/billing/redis.js";
import { parseRouterCommand } from "../../router/config.js";
import { LEDGER_REDIS_OPTIONS, RedisLedger } from "../../router/ledger/redis.js";
import { redisStores } from "../../router/router.js";
import type { UsageEvent } from "../../router/usage/event.js";
import { UsageRecorder } from "../../router/usage/recorder.js";
import { UsageSpool } from "../../router/usage/spool.js";
import { CONTRACT_OPTIONS } from "../support/ledger-contract.js";
import { writerEvent } from "../support/ledger-events.js";
import { pollUntil } from "../support/poll.js";
import { randomPrefix } from "../support/redis.js";
import { useRedisCluster } from "../support/redis-cluster.js";
import { startRedisPair, type TestRedisPair } from "../support/redis-replica.js";

const KEY = "key_00000000000000aa";
const ORIGIN = "00112233445566aa";
const WAIT = { replicas: 1, timeoutMs: 300 };
const CREDIT = 10_000_000_000;

/** Request i, every other one billed to KEY at a cost of its own. */
function request(i: number, nowMs: number): UsageEvent {
  const e = { ...writerEvent("w", i, nowMs, ORIGIN), paid: true };
  if (i % 2 === 1) return e;
  return {
    ...e,
    billing: {
      keyId: KEY,
      costMicros: 1000 + i,
      holdMicros: 0,
      ttftMs: 5,
      finishReason: "stop",
      streamed: false,
    },
  };
}

const cost = (from: number, to: number) => {
  let sum = 0;
  for (let i = from; i < to; i += 1) if (i % 2 === 0) sum += 1000 + i;
  return sum;
};

/** Requests and tokens in a ledger, all miners and models together. */
async function totals(ledger: RedisLedger): Promise<{ requests: number; tokens: number }> {
  const report = await ledger.usage({ nowMs: Date.now(), windowMs: CONTRACT_OPTIONS.retentionMs });
  let requests = 0;
  let tokens = 0;
  for (const m of report.miners)
    for (const x of m.models) {
      requests += x.requests;
      tokens += x.promptTokens + x.completionTokens;
    }
  return { requests, tokens };
}

function expectedTokens(from: number, to: number): number {
  let sum = 0;
  for (let i = from; i < to; i++) {
    const e = writerEvent("w", i, 0);
    sum += e.promptTokens + e.completionTokens;
  }
  return sum;
}

describe("redis: usage and charges wait for a replica (--redis-wait-replicas)", function () {
  this.timeout(60_000);
  let pair: TestRedisPair;
  let dir: string;
  const clients: RedisClient[] = [];
  const client = async (url: string) => {
    const c = await openRedis(url, LEDGER_REDIS_OPTIONS);
    c.on("error", () => {});
    clients.push(c);
    await pollUntil(() => c.status === "ready" || undefined, {
      what: "the client to connect",
      timeoutMs: 10_000,
    });
    return c;
  };
  beforeEach(async () => {
    pair = await startRedisPair();
    dir = await mkdtemp(join(tmpdir(), "tc-wait-replicas-"));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    await pair.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("fails a batch the replica did not acknowledge in time, naming how many did", async () => {
    const c = await client(pair.masterUrl);
    const key = `${randomPrefix()}x`;
    expect(await runBatch(c, [[{ key, run: (p) => p.set(key, "1") }]], WAIT)).to.deep.equal(["OK"]);
    pair.pauseReplica();
    try {
      await runBatch(c, [[{ key, run: (p) => p.set(key, "2") }]], WAIT).then(
        () => expect.fail("a batch no replica acknowledged was taken as written"),
        (err: Error) =>
          expect(err.message).to.equal("redis: 0 of 1 replicas acknowledged the writes within 300 ms"),
      );
    } finally {
      pair.resumeReplica();
    }
  });

  it("the router's ledger and billing wait when --redis-wait-replicas is given, and only then", async () => {
    const c = await client(pair.masterUrl);
    const stores = (argv: string[]) =>
      redisStores(c, parseRouterCommand(["--redis-url", pair.masterUrl, ...argv], {}).config);
    const waiting = stores(["--redis-wait-replicas", "1", "--redis-wait-timeout-ms", "200"]);
    const plain = stores([]);
    const now = Date.now();
    await plain.billing.configure(KEY, { metered: true, budgetDailyMicros: null }, now);
    await plain.billing.credit({
      id: "c",
      keyId: KEY,
      amountMicros: CREDIT,
      note: "t",
      source: "operator",
      atMs: now,
    });
    pair.pauseReplica();
    try {
      const refused = "redis: 0 of 1 replicas acknowledged the writes within 200 ms";
      await waiting.ledger.record([request(1, now)], now).then(
        () => expect.fail("usage no replica has was taken as recorded"),
        (err: Error) => expect(err.message).to.equal(refused),
      );
      await waiting.billing.settle([request(0, now)], now).then(
        () => expect.fail("a charge no replica has was taken as settled"),
        (err: Error) => expect(err.message).to.equal(refused),
      );
      // A deposit's credit too: the watcher reads the block again and credits the same entry id.
      const deposit = {
        id: "dep-1",
        keyId: KEY,
        amountMicros: 5,
        note: "t",
        source: "deposit" as const,
        atMs: now,
      };
      await waiting.billing.credit(deposit).then(
        () => expect.fail("a credit no replica has was taken as made"),
        (err: Error) => expect(err.message).to.equal(refused),
      );
      // Without the flag the master's word is enough (and the replays above count once).
      expect((await plain.ledger.record([request(1, now)], now)).duplicates).to.equal(1);
      expect((await plain.billing.settle([request(2, now)], now)).settled).to.equal(1);
      expect(await plain.billing.credit({ ...deposit, id: "op-1", source: "operator" })).to.equal(true);
    } finally {
      pair.resumeReplica();
    }
    // Once the replica is back, crediting the deposit again succeeds, and counts it once.
    expect(
      await waiting.billing.credit({
        id: "dep-1",
        keyId: KEY,
        amountMicros: 5,
        note: "t",
        source: "deposit",
        atMs: now,
      }),
    ).to.equal(false);
    expect((await waiting.billing.account(KEY, Date.now())).balanceMicros).to.equal(
      CREDIT + 5 + 5 - 1000 - 1002,
    );
  });

  it("keeps in the spool what only the master had, and replays it into the promoted replica: nothing lost, nothing twice", async () => {
    const prefix = randomPrefix();
    const master = await client(pair.masterUrl);
    const ledger = new RedisLedger(master, CONTRACT_OPTIONS, prefix, WAIT);
    const billing = new RedisBilling(master, CONTRACT_OPTIONS, prefix, WAIT);
    const now0 = Date.now();
    await billing.configure(KEY, { metered: true, budgetDailyMicros: null }, now0);
    await billing.credit({
      id: "c",
      keyId: KEY,
      amountMicros: CREDIT,
      note: "t",
      source: "operator",
      atMs: now0,
    });
    // Credits are single commands, outside the batches: make sure the replica has this one.
    expect(await master.wait(1, 5000)).to.equal(1);

    const spool = await UsageSpool.open({ dir: join(dir, "spool") });
    const recorder = new UsageRecorder({
      ledger: new LedgerWithBilling(ledger, billing),
      spool,
      retryMinMs: 50,
      retryMaxMs: 200,
    });
    // Written while the replica keeps up: counted at once.
    await Promise.all(Array.from({ length: 10 }, (_, i) => recorder.recordDurably(request(i, Date.now()))));
    expect(recorder.stats()).to.include({ counted: 10, spooled: 0 });

    // The replica falls behind: the master applies the next batch but the replica never gets it.
    pair.pauseReplica();
    await Promise.all(
      Array.from({ length: 10 }, (_, i) => recorder.recordDurably(request(10 + i, Date.now()))),
    );
    const during = recorder.stats();
    expect(during.spooled, "the unreplicated batch is kept in the spool").to.equal(10);
    expect(during.degraded).to.equal(true);

    // The master dies; the replica, which never saw that batch, takes over.
    await pair.killMaster();
    pair.resumeReplica();
    await pair.promoteReplica();
    await recorder.close();
    await spool.close();

    // The router comes back on the new master (it has no replica yet: no waiting) and replays its spool.
    const promoted = await client(pair.replicaUrl);
    const ledger2 = new RedisLedger(promoted, CONTRACT_OPTIONS, prefix);
    const billing2 = new RedisBilling(promoted, CONTRACT_OPTIONS, prefix);
    const spool2 = await UsageSpool.open({ dir: join(dir, "spool") });
    const recorder2 = new UsageRecorder({
      ledger: new LedgerWithBilling(ledger2, billing2),
      spool: spool2,
      retryMinMs: 50,
      retryMaxMs: 200,
    });
    try {
      await pollUntil(
        () => (recorder2.stats().spoolDepth === 0 && !recorder2.stats().degraded) || undefined,
        {
          what: "the spool to drain into the promoted replica",
          timeoutMs: 20_000,
        },
      );
      expect(recorder2.stats().replayed).to.be.at.least(10);
    } finally {
      await recorder2.close();
      await spool2.close();
    }
    expect(await totals(ledger2)).to.deep.equal({ requests: 20, tokens: expectedTokens(0, 20) });
    const view = await billing2.account(KEY, Date.now());
    expect(view.spentTotalMicros).to.equal(cost(0, 20));
    expect(view.balanceMicros).to.equal(CREDIT - cost(0, 20));
  });
});

describe("redis cluster: a batch's WAIT goes with each master's pipeline", function () {
  this.timeout(120_000);
  const redis = useRedisCluster();

  it("returns every reply in order when no replica is asked for, and fails when one is (the test cluster has none)", async () => {
    const c = await redis.client(LEDGER_REDIS_OPTIONS);
    const cluster = redis.cluster();
    // Keys on every master, so the batch is one pipeline per master.
    const keys: string[] = [];
    const masters = new Set<number>();
    for (let i = 0; masters.size < 3 || keys.length < 6; i++) {
      const k = `${randomPrefix()}{k${i}}`;
      keys.push(k);
      masters.add(await cluster.nodeForKey(k));
    }
    const calls = keys.map((k, i): BatchCall => ({ key: k, run: (p) => p.incrby(k, i + 1) }));
    expect(await runBatch(c, [calls], { replicas: 0, timeoutMs: 100 })).to.deep.equal(
      keys.map((_, i) => i + 1),
    );
    await runBatch(c, [calls], { replicas: 1, timeoutMs: 100 }).then(
      () => expect.fail("a cluster without replicas acknowledged a WAIT for one"),
      (err: Error) =>
        expect(err.message).to.equal("redis: 0 of 1 replicas acknowledged the writes within 100 ms"),
    );
    // The writes themselves were applied (the caller writes them again, idempotently).
    expect(await Promise.all(keys.map((k) => c.get(k)))).to.deep.equal(
      keys.map((_, i) => String(2 * (i + 1))),
    );
  });
});
