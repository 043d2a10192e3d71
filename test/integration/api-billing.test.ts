import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Redis } from "ioredis";
import OpenAI, { APIError } from "openai";
import { type Clock, systemClock } from "../../common/clock.js";
import { type ApiKeys, FileApiKeyStore, RedisApiKeyStore } from "../../router/api/keys.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { MICROS_PER_USD } from "../../router/billing/money.js";
import { RedisBilling } from "../../router/billing/redis.js";
import { ModelCatalogue } from "../../router/catalogue/catalogue.js";
import { checkEntry } from "../../router/catalogue/entry.js";
import { billingApiSuite } from "../support/api-billing-suite.js";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import {
  type PersistentRedis,
  routerRedisClients,
  startPersistentRedis,
} from "../support/ledger-redis-server.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";
import { FakeMiner } from "../support/tunnel-fake-miner.js";

const LEDGER = { bucketMs: 60_000, retentionMs: 86_400_000 };

billingApiSuite("embedded store", async () => {
  const dir = await mkdtemp(join(tmpdir(), "tc-api-billing-"));
  const billing = await EmbeddedBilling.open({
    ...LEDGER,
    path: join(dir, "billing.jsonl"),
    nowMs: Date.now(),
  });
  return {
    billing,
    keyStore: new FileApiKeyStore(join(dir, "keys.json")),
    close: async () => {
      await billing.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe("billing on Redis", () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  billingApiSuite("Redis store", async () => {
    // Each case its own connection and key prefix, as a router replica would have.
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1 });
    const prefix = randomPrefix();
    const billing = new RedisBilling(client, LEDGER, prefix);
    return {
      billing,
      keyStore: new RedisApiKeyStore(client, prefix),
      close: async () => {
        await billing.close();
        await client.quit();
      },
    };
  });
});

describe("billing while Redis is down", function () {
  this.timeout(30_000);
  const MODEL = "billed-model";
  let redis: PersistentRedis;
  const clients = routerRedisClients(() => redis.url);
  let router: RouterUnderTest;
  let billing: RedisBilling;
  let tunnel: RawTunnelClient;
  let fake: FakeMiner;
  /** The API's wall clock runs this far ahead of the real one (to age what it remembers). */
  let aheadMs = 0;

  before(async () => {
    redis = await startPersistentRedis();
  });
  after(async () => {
    await redis.stop();
  });
  beforeEach(async () => {
    aheadMs = 0;
    const client = await clients.open();
    const prefix = randomPrefix();
    const clock: Clock = { ...systemClock, now: () => Date.now() + aheadMs };
    const priced = checkEntry({
      id: MODEL,
      tier: 1,
      tokenizer: "o200k_base",
      contextLength: 0,
      pricePromptPerM: 1,
      priceCompletionPerM: 2,
      aliases: [],
    });
    billing = new RedisBilling(client, LEDGER, prefix);
    router = await startRouter({
      keyStore: new RedisApiKeyStore(client, prefix),
      billing,
      catalogue: new ModelCatalogue([priced], false),
      clock,
    });
    const hotkey = await throwawayHotkey();
    tunnel = await RawTunnelClient.open("grpc", { grpc: router.grpcUrl.slice("grpc://".length), ws: "" });
    await tunnel.handshake(hotkey, {
      models: [{ id: MODEL, maxConcurrency: 8, contextLength: 0, kinds: [] }],
    });
    fake = new FakeMiner(tunnel);
    await waitForSessions(router.hub, (s) => s.some((x) => x.hotkey === hotkey.address), "the miner");
  });
  afterEach(async () => {
    tunnel.destroy();
    await router.close();
    clients.closeAll();
    await redis.restart();
  });

  it("serves a metered key only from a lease held before the outage, then 503 with no miner touched; keeps serving a key last seen unmetered", async () => {
    const keys = router.keys as ApiKeys;
    const none = { requestsPerMinute: 0, tokensPerMinute: 0 };
    const metered = await keys.create("metered", none, Date.now());
    const open = await keys.create("open", none, Date.now());
    await billing.configure(metered.record.id, { metered: true, budgetDailyMicros: null }, Date.now());
    await billing.credit({
      id: "test:credit",
      keyId: metered.record.id,
      amountMicros: MICROS_PER_USD,
      note: "test",
      source: "operator",
      atMs: Date.now(),
    });
    const ask = (key: string) =>
      new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 }).chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "hi" }],
      });
    const refused = (key: string) =>
      ask(key).then(
        () => {
          throw new Error("expected a refusal");
        },
        (err: unknown) => err as APIError,
      );
    // Both keys are seen once while Redis is up.
    await ask(open.key);
    await ask(metered.key);
    expect(fake.requests).to.have.length(2);

    await redis.kill();
    // Its lease, held in Redis before the outage, still covers it: served (the charge waits for
    // Redis like any usage).
    await ask(metered.key);
    expect(fake.requests).to.have.length(3);
    // Once that lease takes no more requests, a new hold needs the store: 503 with a retry time,
    // never served unbilled, however long after its settings were read.
    aheadMs = 10_000;
    let e = await refused(metered.key);
    expect(e).to.be.instanceOf(APIError);
    expect(e.status).to.equal(503);
    expect(e.type).to.equal("api_error");
    expect(e.message).to.match(/billing store is unreachable/);
    expect(e.headers?.get("retry-after")).to.equal("1");
    aheadMs = 20_000;
    e = await refused(metered.key);
    expect(e.status).to.equal(503);
    // The unmetered key is still served.
    const served = await ask(open.key);
    expect(served.choices[0]?.message.content).to.equal("abc");
    expect(fake.requests).to.have.length(4);
  });
});
