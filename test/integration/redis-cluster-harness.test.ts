import { expect } from "chai";
import { openRedis, type RedisClient } from "../../common/redis-connect.js";
import { LEDGER_REDIS_OPTIONS } from "../../router/ledger/redis.js";
import { pollUntil } from "../support/poll.js";
import { randomPrefix } from "../support/redis.js";
import { startRedisCluster, type TestRedisCluster, untilReady } from "../support/redis-cluster.js";

/** One key on each master, by trying names. */
async function keyPerNode(cluster: TestRedisCluster, prefix: string): Promise<string[]> {
  const found: (string | undefined)[] = [undefined, undefined, undefined];
  for (let i = 0; found.includes(undefined); i++) {
    const key = `${prefix}{k${i}}`;
    const node = await cluster.nodeForKey(key);
    if (found[node] === undefined) found[node] = key;
  }
  return found as string[];
}

describe("test Redis Cluster harness", function () {
  this.timeout(120_000);
  let cluster: TestRedisCluster;
  let client: RedisClient;
  before(async () => {
    cluster = await startRedisCluster();
    client = await openRedis(cluster.url, LEDGER_REDIS_OPTIONS);
    client.on("error", () => {});
    // A fail-fast client refuses commands until it has learned the slots.
    await untilReady(client);
  });
  after(async () => {
    client?.disconnect();
    await cluster?.stop();
  });

  it("runs three masters that share the slots, reached through one redis+cluster:// URL", async () => {
    expect(client.isCluster).to.equal(true);
    expect(cluster.url).to.match(/^redis\+cluster:\/\/127\.0\.0\.1:\d+,127\.0\.0\.1:\d+,127\.0\.0\.1:\d+$/);
    const keys = await keyPerNode(cluster, randomPrefix());
    for (const k of keys) await client.set(k, k);
    for (const k of keys) expect(await client.get(k)).to.equal(k);
    await cluster.flushAll();
    for (const k of keys) expect(await client.get(k)).to.equal(null);
  });

  it("a killed master takes only its slots away and comes back with every acknowledged write", async () => {
    const keys = await keyPerNode(cluster, randomPrefix());
    for (const k of keys) await client.set(k, `v:${k}`);
    await cluster.killNode(1);
    // The fail-fast client refuses commands for the dead master's slots and serves the others.
    let refused: unknown;
    try {
      await client.get(keys[1] as string);
    } catch (err) {
      refused = err;
    }
    expect(refused).to.be.instanceOf(Error);
    expect(await client.get(keys[0] as string)).to.equal(`v:${keys[0]}`);
    expect(await client.get(keys[2] as string)).to.equal(`v:${keys[2]}`);
    await cluster.restartNode(1);
    // The same client reconnects to the restarted master by itself; its AOF has the write.
    const back = await pollUntil(() => client.get(keys[1] as string), {
      what: "the restarted master to answer through the cluster client",
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    expect(back).to.equal(`v:${keys[1]}`);
  });
});
