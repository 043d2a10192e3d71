import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import type { RedisClient } from "../../common/redis-connect.js";
import { LedgerWithBilling } from "../../router/billing/ledger-with-billing.js";
import { RedisBilling } from "../../router/billing/redis.js";
import { LEDGER_REDIS_OPTIONS, RedisLedger } from "../../router/ledger/redis.js";
import type { UsageEvent } from "../../router/usage/event.js";
import { UsageRecorder } from "../../router/usage/recorder.js";
import { newUsageOrigin, UsageSequencer } from "../../router/usage/sequence.js";
import { UsageSpool } from "../../router/usage/spool.js";
import { CONTRACT_OPTIONS } from "../support/ledger-contract.js";
import { pollUntil } from "../support/poll.js";
import { randomPrefix } from "../support/redis.js";
import { useRedisCluster } from "../support/redis-cluster.js";

const MINERS = 30;
const KEYS = 9;
const MODELS = ["m-a", "m-b"];
/** Events handed to the recorder per tick of the stream, and the tick. */
const PER_TICK = 25;
const TICK_MS = 5;

/** Picks `n` names from `make(i)` until every master of the cluster owns at least one's slot. */
async function spread(
  n: number,
  make: (i: number) => string,
  slotKey: (name: string) => string,
  nodeFor: (key: string) => Promise<number>,
): Promise<{ names: string[]; nodes: number[] }> {
  const names: string[] = [];
  const nodes: number[] = [];
  for (let i = 0; names.length < n; i++) {
    const name = make(i);
    names.push(name);
    nodes.push(await nodeFor(slotKey(name)));
  }
  return { names, nodes };
}

describe("usage on a Redis Cluster while a master is killed and restarted", function () {
  this.timeout(180_000);
  const redis = useRedisCluster();
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-cluster-failover-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("records a steady stream through the spool: every event counted and charged exactly once", async () => {
    const cluster = redis.cluster();
    const prefix = randomPrefix();
    // The router's client: fails fast while a node is away, so the recorder spools.
    const client: RedisClient = await redis.client(LEDGER_REDIS_OPTIONS);
    const ledger = new RedisLedger(client, CONTRACT_OPTIONS, prefix);
    const billing = new RedisBilling(client, CONTRACT_OPTIONS, prefix);
    const nodeFor = (key: string) => cluster.nodeForKey(key);
    const miners = await spread(
      MINERS,
      (i) => `miner-${i}`,
      (hk) => ledger.keys.counts(hk),
      nodeFor,
    );
    const keys = await spread(
      KEYS,
      (i) => `key_${String(i).padStart(16, "0")}`,
      (id) => billing.keys.account(id),
      nodeFor,
    );
    for (const n of [0, 1, 2]) {
      expect(miners.nodes, "miners on every master").to.include(n);
      expect(keys.nodes, "API keys on every master").to.include(n);
    }
    // Killed: a master that does not hold the miner index (`Pminers`, written first), so a
    // batch's scripts for miners elsewhere succeed while those for the dead master fail.
    const indexNode = await nodeFor(ledger.keys.miners);
    const victim = [0, 1, 2].find((n) => n !== indexNode) as number;
    const now0 = Date.now();
    for (const id of keys.names) {
      await billing.configure(id, { metered: true, budgetDailyMicros: null }, now0);
      await billing.credit({
        id: `c-${id}`,
        keyId: id,
        amountMicros: 10_000_000_000,
        note: "t",
        source: "operator",
        atMs: now0,
      });
    }

    const spool = await UsageSpool.open({ dir: join(dir, "spool") });
    const recorder = new UsageRecorder({
      ledger: new LedgerWithBilling(ledger, billing),
      spool,
      retryMinMs: 50,
      retryMaxMs: 500,
    });
    const sink = new UsageSequencer(recorder, newUsageOrigin());

    // Expected, computed beside the stream.
    const tokens = new Map<string, number>();
    const requests = new Map<string, number>();
    const cost = new Map<string, number>();
    let sent = 0;
    const emit = () => {
      for (let j = 0; j < PER_TICK; j++, sent++) {
        const hk = miners.names[sent % MINERS] as string;
        const model = MODELS[sent % MODELS.length] as string;
        const at = Date.now();
        const keyId = sent % 3 === 0 ? (keys.names[(sent / 3) % KEYS] as string) : undefined;
        const e: UsageEvent = {
          requestId: `r-${sent}`,
          minerHotkey: hk,
          model,
          promptTokens: 10 + (sent % 17),
          completionTokens: 1 + (sent % 5),
          outcome: "completed",
          startedAtMs: at - 20,
          finishedAtMs: at,
          paid: true,
          ...(keyId === undefined
            ? {}
            : {
                billing: {
                  keyId,
                  costMicros: 100 + (sent % 7),
                  holdMicros: 0,
                  ttftMs: 5,
                  finishReason: "stop",
                  streamed: false,
                },
              }),
        };
        sink.record(e);
        const k = `${hk}/${model}`;
        tokens.set(k, (tokens.get(k) ?? 0) + e.promptTokens + e.completionTokens);
        requests.set(k, (requests.get(k) ?? 0) + 1);
        if (keyId !== undefined) cost.set(keyId, (cost.get(keyId) ?? 0) + 100 + (sent % 7));
      }
    };
    const stream = setInterval(emit, TICK_MS);
    try {
      await pollUntil(() => recorder.stats().counted > 2_000, { what: "traffic flowing", timeoutMs: 30_000 });
      await cluster.killNode(victim);
      // The stream goes on; the batches touching the dead master fail and go to the spool.
      await pollUntil(() => recorder.stats().spooled > 1_000, { what: "events spooled", timeoutMs: 60_000 });
      const duringOutage = recorder.stats();
      expect(duringOutage.degraded).to.equal(true);
      await cluster.restartNode(victim);
      const sentAtRestart = sent;
      await pollUntil(() => sent > sentAtRestart + 1_000, {
        what: "traffic after the restart",
        timeoutMs: 30_000,
      });
    } finally {
      clearInterval(stream);
    }
    await pollUntil(
      () => {
        const s = recorder.stats();
        return s.queued === 0 && s.spoolDepth === 0 && !s.degraded;
      },
      { what: "the spool to drain into the cluster", timeoutMs: 90_000, intervalMs: 100 },
    );
    await recorder.idle();
    const stats = recorder.stats();
    await recorder.close();
    await spool.close();

    expect(stats.dropped).to.equal(0);
    expect(stats.replayed).to.be.above(0);
    // Replays of batches that partly succeeded (miners on live masters) were recognised.
    expect(stats.duplicates).to.be.above(0);
    // Each event is reported by exactly one successful ledger call: new, or already counted by a
    // call that failed elsewhere.
    expect(stats.counted + stats.duplicates).to.equal(sent);

    const report = await ledger.usage({ nowMs: Date.now(), windowMs: CONTRACT_OPTIONS.retentionMs });
    const gotTokens = new Map<string, number>();
    const gotRequests = new Map<string, number>();
    for (const m of report.miners) {
      for (const x of m.models) {
        gotTokens.set(`${m.hotkey}/${x.model}`, x.promptTokens + x.completionTokens);
        gotRequests.set(`${m.hotkey}/${x.model}`, x.requests);
      }
    }
    const sortedEntries = (m: Map<string, number>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
    expect(sortedEntries(gotTokens)).to.deep.equal(sortedEntries(tokens));
    expect(sortedEntries(gotRequests)).to.deep.equal(sortedEntries(requests));
    for (const id of keys.names) {
      const view = await billing.account(id, Date.now());
      expect(view.spentTotalMicros, id).to.equal(cost.get(id) ?? 0);
      expect(view.balanceMicros, id).to.equal(10_000_000_000 - (cost.get(id) ?? 0));
    }
  });
});
