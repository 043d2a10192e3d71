import { expect } from "chai";
import { Redis } from "ioredis";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";

describe("test Redis harness", () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  it("serves a private Redis that keeps per-test key prefixes apart", async () => {
    const client = new Redis(redis.url);
    try {
      const a = randomPrefix();
      const b = randomPrefix();
      expect(a).not.to.equal(b);
      await client.set(`${a}k`, "1");
      expect(await client.get(`${a}k`)).to.equal("1");
      expect(await client.get(`${b}k`)).to.equal(null);
    } finally {
      client.disconnect();
    }
  });

  it("can kill and restart an owned server on the same port", async function () {
    if (!redis.owned) this.skip();
    await redis.kill();
    const client = new Redis(redis.url, {
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on("error", () => {});
    let refused = false;
    try {
      await client.connect();
    } catch {
      refused = true;
    }
    client.disconnect();
    expect(refused).to.equal(true);
    await redis.restart();
    const again = new Redis(redis.url);
    expect(await again.ping()).to.equal("PONG");
    again.disconnect();
  });
});
