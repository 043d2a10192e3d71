import { Redis } from "ioredis";
import { RedisRateLimiter } from "../../router/rate-limiter.js";
import { rateLimiterContract } from "../support/api-rate-limit-contract.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";

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
