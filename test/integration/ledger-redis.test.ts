import { expect } from "chai";
import { Redis } from "ioredis";
import type { RedisClient } from "../../common/redis-connect.js";
import { RedisLedger } from "../../router/ledger/redis.js";
import type { UsageEvent } from "../../router/usage/event.js";
import {
  CONTRACT_OPTIONS,
  type LedgerHarness,
  ledgerContract,
  T0,
  usageEvent,
} from "../support/ledger-contract.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";
import { useRedisCluster } from "../support/redis-cluster.js";

/** The contract's harness for a ledger on `c` (one server or a cluster) under a fresh prefix. */
function redisHarness(c: RedisClient, another: () => Promise<RedisClient>): LedgerHarness {
  const prefix = randomPrefix();
  return {
    ledger: new RedisLedger(c, CONTRACT_OPTIONS, prefix),
    reopen: async () => new RedisLedger(await another(), CONTRACT_OPTIONS, prefix),
    dispose: async () => {},
    expectMarkerExpiry: async (e, lastWriteAtMs, expiresAtMs) => {
      const key = `${prefix}{${e.minerHotkey}}:seen:${e.origin}:${Math.floor((e.seq ?? 0) / 65_536)}`;
      const ttl = await c.pttl(key);
      // Redis counts the TTL in real time from the write; the test ran for well under 5 s since.
      expect(ttl, key).to.be.at.most(expiresAtMs - lastWriteAtMs);
      expect(ttl, key).to.be.above(expiresAtMs - lastWriteAtMs - 5_000);
    },
  };
}

describe("Redis usage ledger on a Redis Cluster (3 masters)", () => {
  const redis = useRedisCluster();
  ledgerContract("redis cluster", async () => redisHarness(await redis.client(), () => redis.client()));
});

describe("Redis usage ledger", () => {
  let redis: TestRedis;
  const clients: Redis[] = [];
  const client = () => {
    const c = new Redis(redis.url, { maxRetriesPerRequest: 0 });
    clients.push(c);
    return c;
  };
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const c of clients) c.disconnect();
    await redis.stop();
  });

  ledgerContract("redis", async () => redisHarness(client(), async () => client()));

  it("marks (origin, seq) events as bits of one hash-tagged bitmap per 65,536 seqs, with no per-request key", async () => {
    const prefix = randomPrefix();
    const c = client();
    const ledger = new RedisLedger(c, CONTRACT_OPTIONS, prefix);
    const N = 70_000;
    const evs = Array.from({ length: N }, (_, seq) =>
      usageEvent({
        minerHotkey: "5Hk",
        origin: "0123456789abcdef",
        seq,
        promptTokens: 1,
        completionTokens: 0,
      }),
    );
    for (let i = 0; i < N; i += 10_000) {
      const r = await ledger.record(evs.slice(i, i + 10_000), T0);
      expect(r.counted).to.equal(Math.min(10_000, N - i));
    }
    const keys = (await c.keys(`${prefix}*`)).filter((k) => k.includes("{5Hk}")).sort();
    expect(keys).to.deep.equal(
      [
        `${prefix}{5Hk}:b`,
        `${prefix}{5Hk}:h`,
        `${prefix}{5Hk}:models`,
        `${prefix}{5Hk}:seen:0123456789abcdef:0`,
        `${prefix}{5Hk}:seen:0123456789abcdef:1`,
      ].sort(),
    );
    // About one bit per request: each chunk is 8 KiB, allocated once (grown by SETBIT it would
    // be over-allocated to twice that); the allocator's size class adds up to a quarter.
    for (const [chunk, marked] of [
      [0, 65_536],
      [1, N - 65_536],
    ]) {
      const key = `${prefix}{5Hk}:seen:0123456789abcdef:${chunk}`;
      expect(await c.strlen(key)).to.equal(8192);
      expect(await c.bitcount(key)).to.equal(marked);
      expect(Number(await c.memory("USAGE", key, "SAMPLES", "0"))).to.be.below(8192 * 1.5);
    }
    const again = await ledger.record([evs[3] as UsageEvent, evs[N - 1] as UsageEvent], T0);
    expect(again).to.include({ counted: 0, duplicates: 2 });
    const report = await ledger.usage({ nowMs: T0, windowMs: 86_400_000 });
    expect(report.miners[0]?.requests).to.equal(N);
  });

  it("keeps every key of a miner in one cluster slot (hash tag) and no key per request in the buckets", async () => {
    const prefix = randomPrefix();
    const c = client();
    const ledger = new RedisLedger(c, CONTRACT_OPTIONS, prefix);
    const evs = Array.from({ length: 50 }, (_, i) =>
      usageEvent({ minerHotkey: "5Hk", model: i % 2 ? "m1" : "m2", finishedAtMs: T0 + (i % 3) * 60_000 }),
    );
    await ledger.record(evs, T0 + 180_000);
    const keys = await c.keys(`${prefix}*`);
    const minerKeys = keys.filter((k) => k.includes("{5Hk}"));
    // models, buckets, counts + one id set per bucket: no key per request.
    expect(minerKeys.length).to.equal(3 + 3);
    // Redis Cluster hashes only the first {...} section: all must be the hotkey.
    for (const k of minerKeys) expect(/^[^{]*\{([^}]+)\}/.exec(k)?.[1]).to.equal("5Hk");
    // Buckets: 3 per model, not one member per request; plus one running total per model.
    expect(await c.zcard(`${prefix}{5Hk}:b`)).to.equal(6);
    expect(await c.hlen(`${prefix}{5Hk}:h`)).to.equal(8);
    await ledger.setTier("m1", 2, T0);
    await ledger.setTier("m1", 3, T0 + 1);
    await ledger.removeTier("m1", T0 + 2);
    const log = (await ledger.tierLog()) as { op: string; from: unknown; to: unknown; at_ms: number }[];
    expect(log.map((e) => [e.op, e.from, e.to, e.at_ms])).to.deep.equal([
      ["remove", "3", null, T0 + 2],
      ["set", "2", "3", T0 + 1],
      ["set", null, "2", T0],
    ]);
    const report = await ledger.usage({ nowMs: T0 + 180_000, windowMs: 86_400_000 });
    expect(await ledger.leaderboard(10)).to.deep.equal([
      { hotkey: "5Hk", points: report.miners[0]?.businessPoints },
    ]);
  });

  it("reads buckets written before outcomes were kept, and adds outcomes to them", async () => {
    const prefix = randomPrefix();
    const c = client();
    const ledger = new RedisLedger(c, CONTRACT_OPTIONS, prefix);
    // What an older router left: "prompt,completion,requests" per bucket and running total.
    await c.zadd(`${prefix}{5Old}:models`, T0, "m");
    await c.zadd(`${prefix}{5Old}:b`, T0, `${T0}:m`);
    await c.hset(`${prefix}{5Old}:h`, `${T0}:m`, "10,5,1", "t:m", "10,5,1");
    await c.zadd(`${prefix}miners`, T0, "5Old");
    await ledger.record(
      [
        usageEvent({
          minerHotkey: "5Old",
          model: "m",
          outcome: "failed_early",
          promptTokens: 0,
          completionTokens: 0,
        }),
      ],
      T0,
    );
    const m = (await ledger.usage({ nowMs: T0, windowMs: 86_400_000 })).miners[0]?.models[0];
    expect(m).to.deep.include({ promptTokens: 10, completionTokens: 5, requests: 1 });
    expect(m?.outcomes).to.deep.equal({
      served: 0,
      failedBeforeOutput: 1,
      failedAfterOutput: 0,
      deadlineCut: 0,
    });
    expect(await c.hget(`${prefix}{5Old}:h`, `${T0}:m`)).to.equal("10,5,1,0,1,0,0,0,0");
  });

  it("reads buckets written before paid tokens were kept as free, and adds paid tokens to them", async () => {
    const prefix = randomPrefix();
    const c = client();
    const ledger = new RedisLedger(c, CONTRACT_OPTIONS, prefix);
    // What a router before paid tokens left: seven numbers per bucket and running total.
    await c.zadd(`${prefix}{5Old}:models`, T0, "m");
    await c.zadd(`${prefix}{5Old}:b`, T0, `${T0}:m`);
    await c.hset(`${prefix}{5Old}:h`, `${T0}:m`, "10,5,1,1,0,0,0", "t:m", "10,5,1,1,0,0,0");
    await c.zadd(`${prefix}miners`, T0, "5Old");
    const before = (await ledger.usage({ nowMs: T0, windowMs: 86_400_000 })).miners[0];
    expect(before).to.deep.include({ promptTokens: 10, paidPromptTokens: 0, paidCompletionTokens: 0 });
    expect(before?.businessPoints).to.equal(0);
    await ledger.record(
      [usageEvent({ minerHotkey: "5Old", model: "m", promptTokens: 20_000, completionTokens: 3 })],
      T0,
    );
    const after = (await ledger.usage({ nowMs: T0, windowMs: 86_400_000 })).miners[0];
    expect(after).to.deep.include({
      promptTokens: 20_010,
      paidPromptTokens: 20_000,
      paidCompletionTokens: 3,
    });
    expect(after?.businessPoints).to.be.closeTo(2.0003, 1e-12);
    expect(await c.hget(`${prefix}{5Old}:h`, `${T0}:m`)).to.equal("20010,8,2,2,0,0,0,20000,3");
    expect(await c.hget(`${prefix}{5Old}:h`, "t:m")).to.equal("20010,8,2,2,0,0,0,20000,3");
  });
});
