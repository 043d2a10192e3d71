import { expect } from "chai";
import { Redis } from "ioredis";
import { DAY_MS, GENERATION_TTL_MS } from "../../router/billing/billing.js";
import { RedisBilling } from "../../router/billing/redis.js";
import { parseRouterCommand } from "../../router/config.js";
import { redisStores } from "../../router/router.js";
import { BILLING_OPTIONS, billedEvent, billingContract, MONDAY, NOW } from "../support/billing-contract.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";
import { useRedisCluster } from "../support/redis-cluster.js";

describe("Redis billing store on a Redis Cluster (3 masters)", () => {
  const redis = useRedisCluster();
  billingContract("redis cluster", async (retention) => {
    const prefix = randomPrefix();
    return {
      store: new RedisBilling(await redis.client(), BILLING_OPTIONS, prefix, undefined, retention),
      reopen: async () =>
        new RedisBilling(await redis.client(), BILLING_OPTIONS, prefix, undefined, retention),
      dispose: async () => {},
    };
  });
});

describe("Redis billing store", () => {
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

  billingContract("redis", async (retention) => {
    const prefix = randomPrefix();
    return {
      store: new RedisBilling(client(), BILLING_OPTIONS, prefix, undefined, retention),
      reopen: async () => new RedisBilling(client(), BILLING_OPTIONS, prefix, undefined, retention),
      dispose: async () => {},
    };
  });

  it("the router's --generation-retention-s sets how long Redis keeps each generation record", async () => {
    const c = client();
    const cfg = parseRouterCommand(["--redis-url", redis.url, "--generation-retention-s", "3600"], {}).config;
    const { billing } = redisStores(c, cfg);
    const e = billedEvent("key_00000000000000aa", 100, { finishedAtMs: Date.now() });
    expect(await billing.settle([e], Date.now())).to.deep.include({ settled: 1 });
    const ttl = await c.pttl(billing.keys.generation("key_00000000000000aa", e.requestId));
    expect(ttl).to.be.within(3_500_000, 3_600_000);
  });

  it("stores generation records compact, and still reads the JSON ones routers before it wrote", async () => {
    const c = client();
    const store = new RedisBilling(c, BILLING_OPTIONS, randomPrefix());
    const keyId = "key_00000000000000bb";
    const e = billedEvent(keyId, 250, {
      billing: { app: { referer: "https://app.example/", title: 'A "b" ✓' } },
    });
    await store.settle([e], NOW);
    const want = await store.generation(keyId, e.requestId, NOW);
    expect(want).to.include({ id: e.requestId, keyId, costMicros: 250, streamed: true });
    expect(want?.app).to.deep.equal({ referer: "https://app.example/", title: 'A "b" ✓' });
    const name = store.keys.generation(keyId, e.requestId);
    const stored = (await c.get(name)) ?? "";
    // Neither id is in the value: the key names both.
    expect(stored.startsWith("2\t")).to.equal(true);
    expect(stored).to.not.include(keyId).and.not.include(e.requestId);
    // The same record as an older router stored it: read alike, one by one and in the recent list.
    const ttl = await c.pttl(name);
    await c.set(name, JSON.stringify({ g: want, x: NOW + 60_000 }), "PX", ttl);
    expect(await store.generation(keyId, e.requestId, NOW)).to.deep.equal(want);
    expect(await store.recentGenerations(keyId, 10, NOW)).to.deep.equal([want]);
    // A record for another request (a key renamed by hand) or a mangled one reads as none.
    await c.set(name, JSON.stringify({ g: { ...want, id: "other" }, x: NOW + 60_000 }), "PX", ttl);
    expect(await store.generation(keyId, e.requestId, NOW)).to.equal(undefined);
    await c.set(name, "2\tmodel\t1", "PX", ttl);
    expect(await store.generation(keyId, e.requestId, NOW)).to.equal(undefined);
    expect(await store.recentGenerations(keyId, 10, NOW)).to.deep.equal([]);
  });

  it("100 concurrent holds from 5 router replicas (clients) against a balance covering 10: exactly 10 succeed", async () => {
    const prefix = randomPrefix();
    const stores = Array.from({ length: 5 }, () => new RedisBilling(client(), BILLING_OPTIONS, prefix));
    const key = "key_0123456789abcdef";
    const first = stores[0] as RedisBilling;
    await first.configure(key, { metered: true, budgetDailyMicros: null }, NOW);
    await first.credit({
      id: "c",
      keyId: key,
      amountMicros: 10 * 777,
      note: "",
      source: "operator",
      atMs: NOW,
    });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        (stores[i % 5] as RedisBilling).hold({
          keyId: key,
          requestId: `r${i}`,
          amountMicros: 777,
          nowMs: NOW,
          ttlMs: 60_000,
        }),
      ),
    );
    expect(results.filter((r) => r.ok)).to.have.length(10);
    expect((await first.account(key, NOW)).heldMicros).to.equal(7770);
  });

  it("keeps every key of an API key in its {key:<id>} slot, with no per-request key but the generation record", async () => {
    const prefix = randomPrefix();
    const c = client();
    const store = new RedisBilling(c, BILLING_OPTIONS, prefix);
    const key = "key_00000000000000aa";
    await store.configure(key, { metered: true, budgetDailyMicros: 1_000_000 }, NOW);
    await store.credit({
      id: "c1",
      keyId: key,
      amountMicros: 1_000_000,
      note: "",
      source: "operator",
      atMs: NOW,
    });
    await store.hold({ keyId: key, requestId: "h1", amountMicros: 10, nowMs: NOW, ttlMs: 60_000 });
    const evs = Array.from({ length: 30 }, (_, i) =>
      billedEvent(key, 100 + i, { model: i % 2 ? "m1" : "m2" }),
    );
    await store.settle(evs, NOW);
    await store.setCursor("deposits", "7");
    const keys = (await c.keys(`${prefix}*`)).sort();
    const mine = keys.filter((k) => k !== `${prefix}{cursors}`);
    for (const k of mine) expect(/^[^{]*\{([^}]+)\}/.exec(k)?.[1], k).to.equal(`key:${key}`);
    const stems = new Set(mine.map((k) => k.slice(`${prefix}{key:${key}}:`.length).replace(/^g:.*/, "g:*")));
    expect([...stems].sort()).to.deep.equal([
      "a",
      "bz",
      "dz",
      "g:*",
      "gz",
      "hamt",
      "holds",
      "ids",
      "log",
      "s",
    ]);
    expect(mine.filter((k) => k.includes("}:g:"))).to.have.length(30);
    // Money is stored as whole numbers.
    const acct = await c.hgetall(`${prefix}{key:${key}}:a`);
    const spent = evs.reduce((n, e) => n + (e.billing?.costMicros ?? 0), 0);
    expect(acct).to.include({ balance: String(1_000_000 - spent), spent: String(spent), held: "10" });
    // The record lives for real 30 days in Redis too.
    const ttl = await c.pttl(`${prefix}{key:${key}}:g:${evs[0]?.requestId}`);
    expect(ttl)
      .to.be.above(30 * DAY_MS - 60_000)
      .and.at.most(30 * DAY_MS);
  });

  it("trims bucket and day fields from the hash when they fall out of the 24 h window and the 90 days", async () => {
    const prefix = randomPrefix();
    const c = client();
    const store = new RedisBilling(c, BILLING_OPTIONS, prefix);
    const key = "key_00000000000000bb";
    const d0 = MONDAY + 3_600_000;
    await store.settle([billedEvent(key, 5, { finishedAtMs: d0 })], d0);
    const fields = async () => (await c.hkeys(`${prefix}{key:${key}}:s`)).sort();
    expect(await fields()).to.have.length(4 + 4 + 1);
    const d2 = d0 + 2 * DAY_MS;
    await store.settle([billedEvent(key, 6, { finishedAtMs: d2 })], d2);
    // The old bucket is gone, both days stay.
    expect((await fields()).filter((f) => f.startsWith("b:"))).to.have.length(4);
    expect((await fields()).filter((f) => f.startsWith("d:"))).to.have.length(8);
    const d92 = d0 + 92 * DAY_MS; // day D+2 is 90 days back: the oldest kept is D+3
    await store.settle([billedEvent(key, 7, { finishedAtMs: d92 })], d92);
    const day = (t: number) => String(Math.floor(t / DAY_MS));
    const left = await fields();
    expect(left.filter((f) => f.startsWith("d:")).every((f) => f.startsWith(`d:${day(d92)}:`))).to.equal(
      true,
    );
    expect(left.filter((f) => f.startsWith("D:"))).to.deep.equal([`D:${day(d92)}`]);
    expect(await c.zcard(`${prefix}{key:${key}}:dz`)).to.equal(1);
    expect(await c.zcard(`${prefix}{key:${key}}:bz`)).to.equal(1);
  });

  it("bounds the recent-generations index: the newest 100 ids, none from before the records' retention", async () => {
    const prefix = randomPrefix();
    const c = client();
    const store = new RedisBilling(c, BILLING_OPTIONS, prefix);
    const key = "key_00000000000000cc";
    const index = `${prefix}{key:${key}}:gz`;
    const evs = Array.from({ length: 150 }, (_, i) => billedEvent(key, 1, { finishedAtMs: NOW + i }));
    await store.settle(evs, NOW + 200);
    expect(await c.zcard(index)).to.equal(100);
    expect(await c.zrange(index, "0", "0")).to.deep.equal([evs[50]?.requestId]);
    // Past the records' 30 days (and the day of slack for long requests) the old ids go too.
    const late = NOW + GENERATION_TTL_MS + DAY_MS + 10_000;
    const last = billedEvent(key, 1, { finishedAtMs: late });
    await store.settle([last], late);
    expect(await c.zrange(index, "0", "-1")).to.deep.equal([last.requestId]);
  });
});
