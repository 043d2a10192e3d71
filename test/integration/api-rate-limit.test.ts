import { expect } from "chai";
import { Redis } from "ioredis";
import OpenAI, { APIError } from "openai";
import { Registry } from "prom-client";
import { TensorClawError, toHttpError } from "../../common/errors.js";
import { Encodings } from "../../common/tokens/encodings.js";
import { type ApiKeys, RedisApiKeyStore } from "../../router/api/keys.js";
import { type RateLimiter, RedisRateLimiter } from "../../router/api/rate-limiter.js";
import { FailoverRateLimiter, redisRateLimiterWithFallback } from "../../router/api/rate-limiter-failover.js";
import { businessApiDeps } from "../../router/api/setup.js";
import { ModelCatalogue } from "../../router/catalogue/catalogue.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { grantOf, rateLimiterContract } from "../support/api-rate-limit-contract.js";
import {
  type PersistentRedis,
  routerRedisClients,
  startPersistentRedis,
} from "../support/ledger-redis-server.js";
import { memoryLogger } from "../support/memory-logger.js";
import { backendTokens, type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";
import { pollUntil } from "../support/poll.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";
import { useRedisCluster } from "../support/redis-cluster.js";

const MODEL = "test-model";

describe("rate limiter on Redis", () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  rateLimiterContract("redis", async () => {
    // Each case its own connection (as concurrent routers would have) and its own key prefix.
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    return {
      limiter: new RedisRateLimiter(client, randomPrefix()),
      close: async () => {
        await client.quit();
      },
    };
  });
});

describe("rate limiter on a Redis Cluster (3 masters)", () => {
  const redis = useRedisCluster();
  rateLimiterContract("redis cluster", async () => {
    const client = await redis.client({ maxRetriesPerRequest: 1 });
    return { limiter: new RedisRateLimiter(client, randomPrefix()), close: async () => {} };
  });

  it("holds per process only the keys of a master that is down, until it answers; the others stay shared", async function () {
    this.timeout(90_000);
    const cluster = redis.cluster();
    const client = await redis.client({ maxRetriesPerRequest: 1 });
    const prefix = randomPrefix();
    const log = memoryLogger();
    const limiter = redisRateLimiterWithFallback(client, log.logger, { prefix, probeIntervalMs: 20 });
    const lim = { requestsPerMinute: 1000, tokensPerMinute: 0 };
    const k = "key_on_the_killed_master";
    expect((await limiter.reserve(k, lim, 0, Date.now())).ok).to.equal(true);
    const node = await cluster.nodeForKey(`${prefix}ratelimit:{${k}}`);
    // A key whose buckets live on another master, and another router's limiter beside this one.
    let other = "";
    for (let i = 0; other === ""; i++) {
      if ((await cluster.nodeForKey(`${prefix}ratelimit:{key_${i}}`)) !== node) other = `key_${i}`;
    }
    const otherRouter = redisRateLimiterWithFallback(
      await redis.client({ maxRetriesPerRequest: 1 }),
      log.logger,
      {
        prefix,
        probeIntervalMs: 20,
      },
    );
    const three = { requestsPerMinute: 3, tokensPerMinute: 0 };
    await cluster.killNode(node);
    const backAgain = () => log.lines().filter((l) => /answers again/.test(l.msg)).length;
    try {
      expect((await limiter.reserve(k, lim, 0, Date.now())).ok, "held in process").to.equal(true);
      expect(limiter.degraded).to.equal(true);
      // A second of calls, the store checked every 20 ms: two masters of three answer all along.
      for (const until = Date.now() + 1000; Date.now() < until; ) {
        expect((await limiter.reserve(k, lim, 0, Date.now())).ok).to.equal(true);
        await new Promise((r) => setTimeout(r, 25));
      }
      expect(backAgain(), "went back to Redis while the key's master was down").to.equal(0);
      // The other master's keys stay shared between the routers: 3 a minute in all, not 3 each.
      expect(limiter.degradedFor(other)).to.equal(false);
      const oks = [];
      for (const l of [limiter, limiter, otherRouter, otherRouter]) {
        oks.push((await l.reserve(other, three, 0, Date.now())).ok);
      }
      expect(oks).to.deep.equal([true, true, true, false]);
      expect(limiter.degradedFor(k)).to.equal(true);
    } finally {
      await cluster.restartNode(node);
    }
    await pollUntil(
      async () => {
        await limiter.reserve(k, lim, 0, Date.now());
        return !limiter.degraded;
      },
      { what: "the limiter to go back to the cluster", timeoutMs: 30_000, intervalMs: 25 },
    );
    expect(backAgain()).to.equal(1);
    expect(log.lines().filter((l) => l.level === WARN && /unreachable/.test(l.msg))).to.have.length(1);
  });
});

const WARN = 40;

describe("rate limits while Redis is down (in-process fallback)", function () {
  this.timeout(30_000);
  let redis: PersistentRedis;
  const clients = routerRedisClients(() => redis.url);
  const routerClient = () => clients.open();
  before(async () => {
    redis = await startPersistentRedis();
  });
  after(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    clients.closeAll();
    await redis.restart(); // no-op unless a test left it killed
  });

  /**
   * Calls `reserve` with an unlimited key (which takes nothing) until the limiter is back on
   * Redis: the limiter probes Redis on calls (at most every 20 ms here), and the restarted
   * redis-server and the client's reconnect are another process's doing, so this polls.
   */
  async function untilShared(limiter: FailoverRateLimiter): Promise<void> {
    await pollUntil(
      async () => {
        await limiter.reserve("poll", { requestsPerMinute: 0, tokensPerMinute: 0 }, 0, Date.now());
        return !limiter.degraded;
      },
      { what: "the limiter to go back to Redis", timeoutMs: 10_000, intervalMs: 25 },
    );
  }

  it("holds the limits per process during an outage, warns once per outage, then goes back to Redis", async () => {
    const prefix = randomPrefix();
    const client = await routerClient();
    const admin = await routerClient();
    const log = memoryLogger();
    const limiter = redisRateLimiterWithFallback(client, log.logger, { prefix, probeIntervalMs: 20 });
    // 2 per minute: one slot every 30 s, so nothing refills during the test.
    const lim = { requestsPerMinute: 2, tokensPerMinute: 0 };
    const k = "key_outage";
    expect((await limiter.reserve(k, lim, 0, Date.now())).ok).to.equal(true);
    expect(Number(await admin.hget(`${prefix}ratelimit:{${k}}`, "r"))).to.be.closeTo(1, 0.01);

    await redis.kill();
    // The in-process buckets start full: two more, then refused with the time to the next slot.
    expect((await limiter.reserve(k, lim, 0, Date.now())).ok).to.equal(true);
    expect((await limiter.reserve(k, lim, 0, Date.now())).ok).to.equal(true);
    for (let i = 0; i < 5; i++) {
      const r = await limiter.reserve(k, lim, 0, Date.now());
      expect(r.ok).to.equal(false);
      if (!r.ok) expect(r.retryAfterMs).to.be.within(29_000, 30_000);
    }
    expect(limiter.degraded).to.equal(true);
    const tokens = { requestsPerMinute: 0, tokensPerMinute: 100 };
    const r = grantOf(await limiter.reserve("key_outage_tokens", tokens, 10, Date.now()));
    await limiter.reconcile(r, 50, Date.now());
    expect(log.lines().filter((l) => l.level === WARN)).to.have.length(1);

    await redis.restart();
    await untilShared(limiter);
    expect(log.lines().some((l) => /answers again/.test(l.msg))).to.equal(true);
    // Redis kept its bucket (one slot left) while the in-process one is empty: only Redis says yes.
    expect((await limiter.reserve(k, lim, 0, Date.now())).ok).to.equal(true);
    expect((await limiter.reserve(k, lim, 0, Date.now())).ok).to.equal(false);
    expect(Number(await admin.hget(`${prefix}ratelimit:{${k}}`, "r"))).to.be.below(1);

    // A second outage is a new outage: one more warning.
    await redis.kill();
    for (let i = 0; i < 3; i++) await limiter.reserve("key_other", lim, 0, Date.now());
    expect(log.lines().filter((l) => l.level === WARN)).to.have.length(2);
  });

  it("settles each reservation where it was taken, across the outage and after it", async () => {
    const prefix = randomPrefix();
    const client = await routerClient();
    const admin = await routerClient();
    const limiter = redisRateLimiterWithFallback(client, memoryLogger().logger, {
      prefix,
      probeIntervalMs: 20,
    });
    const lim = { requestsPerMinute: 0, tokensPerMinute: 1000 };
    const k = "key_settle";
    const stored = async () => Number(await admin.hget(`${prefix}ratelimit:{${k}}`, "t"));
    const onRedis = grantOf(await limiter.reserve(k, lim, 300, Date.now()));
    expect(await stored()).to.be.closeTo(700, 1);

    await redis.kill();
    // Two in-process reservations of the same key and size as the Redis one: 400 left in process.
    const inProcess = [
      grantOf(await limiter.reserve(k, lim, 300, Date.now())),
      grantOf(await limiter.reserve(k, lim, 300, Date.now())),
    ];
    // The Redis reservation's refund belongs to Redis: the in-process bucket gets nothing from it
    // (a limiter matching reservations by key and size would refund 200 here and grant the 500).
    await limiter.reconcile(onRedis, 100, Date.now());
    expect((await limiter.reserve(k, lim, 500, Date.now())).ok).to.equal(false);

    await redis.restart();
    await untilShared(limiter);
    // The in-process reservations are settled in process, not credited to Redis's bucket.
    for (const r of inProcess) await limiter.reconcile(r, 100, Date.now());
    expect(await stored()).to.be.closeTo(700, 1);
    // One taken on Redis now is settled on Redis again.
    const later = grantOf(await limiter.reserve(k, lim, 100, Date.now()));
    const afterReserve = await stored();
    await limiter.reconcile(later, 0, Date.now());
    expect(await stored()).to.be.closeTo(Math.min(1000, afterReserve + 100), 2);
  });

  it("answers 503-shaped `unavailable` with a retry time when even the fallback fails, never a bare error", async () => {
    const client = await routerClient();
    await redis.kill();
    const broken: RateLimiter = {
      reserve: async () => {
        throw new Error("fallback broken");
      },
      reconcile: async () => {
        throw new Error("fallback broken");
      },
    };
    const limiter = new FailoverRateLimiter({
      primary: new RedisRateLimiter(client, randomPrefix()),
      fallback: broken,
      probe: () => client.ping(),
      logger: memoryLogger().logger,
      probeIntervalMs: 700,
    });
    const lim = { requestsPerMinute: 5, tokensPerMinute: 100 };
    let caught: unknown;
    try {
      await limiter.reserve("k", lim, 1, Date.now());
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(TensorClawError);
    const http = toHttpError(caught);
    expect(http.status).to.equal(503);
    expect(http.retryAfterMs).to.equal(700);
    expect(http.body.error.type).to.equal("api_error");
    // reconcile never rejects, whatever fails underneath.
    await limiter.reconcile({ keyId: "k", limits: lim, tokens: 10 }, 50, Date.now());
  });

  describe("through the Business API, with a real miner", () => {
    let router: RouterUnderTest;
    let backend: OpenAIBackend;
    let miner: MinerProcess;
    let log: ReturnType<typeof memoryLogger>;

    beforeEach(async () => {
      const client = await routerClient();
      log = memoryLogger();
      // The limiter as the router program assembles it (this Redis is private: default key prefix).
      const assembled = businessApiDeps({
        dispatcher: {
          sessions: () => [],
          sessionsOffering: () => [],
          dispatch: () => {
            throw new Error("the harness's hub dispatches");
          },
          setGhost: () => {},
          onChange: () => () => {},
        },
        usage: { record: () => {} },
        registry: new Registry(),
        logger: log.logger,
        redis: client,
        noAuth: false,
        ready: () => true,
        catalogue: () => ModelCatalogue.empty(true),
        encodings: new Encodings(),
      });
      router = await startRouter({ keyStore: new RedisApiKeyStore(client), limiter: assembled.limiter });
      backend = await startOpenAIBackend({ models: [MODEL], tokens: 3 });
      miner = await startMiner(router, backend.url);
    });
    afterEach(async () => {
      await miner.kill();
      await router.close();
      await backend.close();
    });

    it("serves known keys with limits (200, then 429 past the allowance) while Redis is down, others 503 + retry-after, never 500", async () => {
      const { key } = await (router.keys as ApiKeys).create(
        "outage",
        { requestsPerMinute: 3, tokensPerMinute: 100_000 },
        Date.now(),
      );
      const c = new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 });
      const ask = (i: number) =>
        c.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: `q${i}` }] });
      await ask(0); // the key is now known to this router, as it must be to be served without Redis
      const { key: unseen } = await (router.keys as ApiKeys).create(
        "unseen",
        {
          requestsPerMinute: 3,
          tokensPerMinute: 100_000,
        },
        Date.now(),
      );
      await redis.kill();
      // A key this router never checked cannot be checked now: a retryable 503, not a 401 or a 500.
      const unchecked = await new OpenAI({
        apiKey: unseen,
        baseURL: router.baseURL,
        maxRetries: 0,
      }).chat.completions
        .create({ model: MODEL, messages: [{ role: "user", content: "q" }] })
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      expect(unchecked).to.be.instanceOf(APIError);
      expect((unchecked as APIError).status).to.equal(503);
      expect(Number((unchecked as APIError).headers?.get("retry-after"))).to.equal(1);
      for (let i = 1; i <= 3; i++) {
        const r = await ask(i);
        expect(r.choices[0]?.message.content).to.equal(backendTokens(`q${i}`, 3).join(""));
      }
      const refused = await ask(4).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).to.be.instanceOf(APIError);
      const e = refused as APIError;
      expect(e.status).to.equal(429);
      expect(e.type).to.equal("rate_limit_error");
      expect(Number(e.headers?.get("retry-after"))).to.be.within(1, 20);
      expect(log.lines().filter((l) => l.level === WARN)).to.have.length(1);
    });
  });
});
