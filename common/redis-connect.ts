import type { Cluster, ClusterOptions, Redis, RedisOptions } from "ioredis";
import { TensorClawError } from "./errors.js";
import { parseRedisUrl, type RedisTarget } from "./redis-url.js";

/** A client of one Redis server or of a Redis Cluster: every store takes either. */
export type RedisClient = Redis | Cluster;

/**
 * The options a program gives its client, written as for one server. For a
 * cluster they are mapped onto ioredis' Cluster options: `retryStrategy`
 * paces both the reconnection to the cluster as a whole
 * (`clusterRetryStrategy`) and to a single node that went away
 * (`clusterNodeRetryStrategy`: a master restarted on its old address
 * serves its slots again without waiting for a MOVED reply);
 * `enableOfflineQueue` and `lazyConnect` apply to the cluster client; the
 * rest goes to every node's connection (`redisOptions`).
 */
export type RedisClientOptions = Pick<
  RedisOptions,
  | "enableOfflineQueue"
  | "maxRetriesPerRequest"
  | "commandTimeout"
  | "connectTimeout"
  | "retryStrategy"
  | "lazyConnect"
>;

/**
 * The client for a `--redis-url` (see common/redis-url.ts for the syntax):
 * a `Redis` for `redis://` / `rediss://`, a `Cluster` for
 * `redis+cluster://` / `rediss+cluster://`. ioredis is loaded here, so a
 * program without Redis never loads it. A malformed URL throws
 * RedisUrlError (configs check the setting at startup, so it names it).
 *
 * Commands whose keys span slots go through runBatch (common/redis-batch.ts),
 * one pipeline per master. ioredis' auto-pipelining stays off: it routes a
 * script by its first argument, which for our scripts with a variable
 * number of keys is the key count.
 */
export async function openRedis(url: string, options: RedisClientOptions): Promise<RedisClient> {
  const target = parseRedisUrl(url);
  const ioredis = await import("ioredis");
  if (target.kind === "single") return new ioredis.Redis(url, { ...options });
  const { retryStrategy, enableOfflineQueue, lazyConnect, ...perNode } = options;
  const clusterOptions: ClusterOptions = {
    redisOptions: {
      ...perNode,
      ...(target.username === undefined ? {} : { username: target.username }),
      ...(target.password === undefined ? {} : { password: target.password }),
      ...(target.tls ? { tls: {} } : {}),
    },
    ...(enableOfflineQueue === undefined ? {} : { enableOfflineQueue }),
    ...(lazyConnect === undefined ? {} : { lazyConnect }),
    ...(retryStrategy === undefined || retryStrategy === null
      ? {}
      : {
          clusterRetryStrategy: (times: number) => retryStrategy(times),
          clusterNodeRetryStrategy: retryStrategy,
        }),
  };
  return new ioredis.Cluster(
    target.nodes.map((n) => ({ host: n.host, port: n.port })),
    clusterOptions,
  );
}

/** Where a `--redis-url` points, for messages: host:port or the seed nodes, never a password. */
export function redisWhere(url: string): string {
  return parseRedisUrl(url).where;
}

/**
 * Connects a client opened with `lazyConnect` (a command-line tool's), or
 * throws `unavailable` naming where it could not reach (never a password)
 * and why (refused, a certificate that does not verify, a wrong password);
 * the client is then disconnected.
 */
export async function connectRedis(client: RedisClient, url: string): Promise<void> {
  // ioredis rejects connect() with a generic error ("Connection is closed.", "None of startup
  // nodes is available"); a server's socket error (refused, a certificate) comes as an event.
  let seen: unknown;
  const keep = (err: unknown) => {
    seen ??= err;
  };
  client.on("error", keep);
  try {
    await client.connect();
  } catch (cause) {
    client.disconnect();
    const target = parseRedisUrl(url);
    // A cluster client reports only that no seed node answered: one seed, asked alone, says why.
    const why =
      target.kind === "cluster"
        ? await seedFailure(target)
        : seen instanceof Error
          ? seen.message
          : undefined;
    throw new TensorClawError(
      "unavailable",
      `cannot reach Redis at ${redisWhere(url)}${why === undefined || why === "" ? "" : ` (${why})`}`,
      { cause },
    );
  } finally {
    client.off("error", keep);
  }
}

/**
 * The error of a lone connection to a cluster's first seed node (or of its
 * CLUSTER SLOTS: a server without cluster support says so), or undefined.
 */
async function seedFailure(target: Extract<RedisTarget, { kind: "cluster" }>): Promise<string | undefined> {
  const seed = target.nodes[0];
  if (seed === undefined) return undefined;
  const { Redis } = await import("ioredis");
  const probe = new Redis({
    host: seed.host,
    port: seed.port,
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(target.tls ? { tls: {} } : {}),
    lazyConnect: true,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  let failure: unknown;
  probe.on("error", (err: unknown) => {
    failure ??= err;
  });
  try {
    await probe.connect();
    await probe.call("CLUSTER", "SLOTS");
    return undefined;
  } catch (err) {
    const e = failure ?? err;
    return e instanceof Error ? e.message : undefined;
  } finally {
    probe.disconnect();
  }
}
