import { expect } from "chai";
import { Redis } from "ioredis";
import { RedisLedger } from "../../router/ledger-redis.js";
import { CONTRACT_OPTIONS, ledgerContract, T0, usageEvent } from "../support/ledger-contract.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";

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

  ledgerContract("redis", async () => {
    const prefix = randomPrefix();
    return {
      ledger: new RedisLedger(client(), CONTRACT_OPTIONS, prefix),
      reopen: async () => new RedisLedger(client(), CONTRACT_OPTIONS, prefix),
      dispose: async () => {},
    };
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
});
