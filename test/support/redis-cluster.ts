import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Redis } from "ioredis";
import { openRedis, type RedisClient, type RedisClientOptions } from "../../common/redis-connect.js";
import { parseRedisUrl } from "../../common/redis-url.js";
import { LEDGER_REDIS_OPTIONS } from "../../router/ledger/redis.js";
import { pollUntil } from "./poll.js";
import { freePort, onRedisAt, waitForRedisPing } from "./redis.js";

/** A real 3-master Redis Cluster the tests may use, and how to break it. */
export interface TestRedisCluster {
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3` */
  readonly url: string;
  /** Client ports of the masters, in the order the indexes below use. */
  readonly ports: number[];
  /** SIGKILLs master `i` (owned clusters only). */
  killNode(i: number): Promise<void>;
  /** Starts master `i` again on its port and folder (its AOF and nodes.conf), and waits for the cluster to be whole. */
  restartNode(i: number): Promise<void>;
  /** Index of the master owning the slot of `key`. */
  nodeForKey(key: string): Promise<number>;
  /** FLUSHALL on every master. */
  flushAll(): Promise<void>;
  /** Stops every node and removes their folders. */
  stop(): Promise<void>;
}

const MASTERS = 3;
/**
 * Long enough that a loaded 2-core machine does not make a node look dead;
 * a killed node is marked failed after this, and its failure flag is
 * cleared about twice this long after it comes back.
 */
const NODE_TIMEOUT_MS = 3000;
/** Generous: cluster creation and a node's rejoining wait on gossip. */
const WHOLE_TIMEOUT_MS = 60_000;

function withNode<T>(port: number, fn: (r: Redis) => Promise<T>): Promise<T> {
  return onRedisAt(`redis://127.0.0.1:${port}`, fn);
}

/** Whether every node answers, says cluster_state:ok with all 16384 slots served, and sees no peer failing. */
async function isWhole(ports: readonly number[]): Promise<boolean> {
  for (const port of ports) {
    const ok = await withNode(port, async (r) => {
      const info = String(await r.cluster("INFO"));
      const nodes = String(await r.cluster("NODES"));
      return (
        info.includes("cluster_state:ok") &&
        info.includes("cluster_slots_ok:16384") &&
        info.includes(`cluster_known_nodes:${ports.length}`) &&
        !/\bfail\??\b|handshake|noaddr/.test(nodes)
      );
    });
    if (!ok) return false;
  }
  return true;
}

function waitWhole(ports: readonly number[]): Promise<true> {
  return pollUntil(async () => (await isWhole(ports)) || undefined, {
    what: "the redis cluster to be whole (cluster_state:ok, 16384 slots, no failing node)",
    timeoutMs: WHOLE_TIMEOUT_MS,
    intervalMs: 100,
  });
}

async function masterForKey(ports: readonly number[], key: string): Promise<number> {
  return withNode(ports[0] as number, async (r) => {
    const slot = Number(await r.cluster("KEYSLOT", key));
    for (const [from, to, master] of await r.cluster("SLOTS")) {
      if (slot >= from && slot <= to && master !== undefined) {
        const i = ports.indexOf(Number(master[1]));
        if (i === -1)
          throw new Error(`slot ${slot} is served by port ${master[1]}, not one of ${ports.join(",")}`);
        return i;
      }
    }
    throw new Error(`no master serves slot ${slot}`);
  });
}

async function flushAll(ports: readonly number[]): Promise<void> {
  await Promise.all(ports.map((p) => withNode(p, (r) => r.flushall())));
}

function external(url: string): TestRedisCluster {
  const target = parseRedisUrl(url);
  if (target.kind !== "cluster") throw new Error("REDIS_CLUSTER_URL must be a redis+cluster:// URL");
  const ports = target.nodes.map((n) => n.port);
  const refuse = async () => {
    throw new Error("cannot kill or restart a node of the external REDIS_CLUSTER_URL cluster");
  };
  return {
    url,
    ports,
    killNode: refuse,
    restartNode: refuse,
    nodeForKey: (key) => masterForKey(ports, key),
    flushAll: () => flushAll(ports),
    stop: async () => {},
  };
}

/**
 * Starts a real 3-master Redis Cluster: three `redis-server --cluster-enabled
 * yes` on free ports, each in its own folder with an AOF fsynced on every
 * write (a restarted master has every acknowledged write), joined by
 * `redis-cli --cluster create`; resolves once every node reports the whole
 * cluster. Uses REDIS_CLUSTER_URL instead when it is set. No replicas, and
 * `cluster-require-full-coverage no`: while a master is down the others keep
 * serving their slots. About a second: start one per suite file.
 */
export async function startRedisCluster(options: { durable?: boolean } = {}): Promise<TestRedisCluster> {
  // `durable: false` (benchmarks) turns the AOF off, as the single test Redis has it.
  const persistence =
    options.durable === false
      ? ["--appendonly", "no", "--save", ""]
      : ["--appendonly", "yes", "--appendfsync", "always", "--save", ""];
  const given = process.env.REDIS_CLUSTER_URL;
  if (given !== undefined && given !== "") {
    const c = external(given);
    await waitWhole(c.ports);
    return c;
  }
  if (spawnSync("redis-cli", ["--version"], { stdio: "ignore" }).status !== 0) {
    throw new Error(
      "cluster tests need redis-server and redis-cli (Debian/Ubuntu: `apt-get install redis-server`), " +
        "or REDIS_CLUSTER_URL set to a cluster you can use for tests",
    );
  }
  const dirs: string[] = [];
  // Client and cluster-bus ports, all distinct (the kernel may hand a port out twice).
  const taken = new Set<number>();
  while (taken.size < 2 * MASTERS) taken.add(await freePort());
  const [ports, busPorts] = [[...taken].slice(0, MASTERS), [...taken].slice(MASTERS)];
  for (let i = 0; i < MASTERS; i++) dirs.push(await mkdtemp(join(tmpdir(), "tensorclaw-redis-cluster-")));
  const children: (ChildProcess | undefined)[] = new Array(MASTERS).fill(undefined);
  const launch = async (i: number) => {
    const port = ports[i] as number;
    // stdio ignored: a node's log would fill the test output; its folder keeps nodes.conf and the AOF.
    children[i] = spawn(
      "redis-server",
      [
        ...["--port", String(port), "--bind", "127.0.0.1", "--dir", dirs[i] as string],
        ...["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"],
        ...["--cluster-port", String(busPorts[i]), "--cluster-node-timeout", String(NODE_TIMEOUT_MS)],
        ...["--cluster-require-full-coverage", "no"],
        ...persistence,
      ],
      { stdio: "ignore" },
    );
    await waitForRedisPing(`redis://127.0.0.1:${port}`, 10_000);
  };
  const kill = async (i: number) => {
    const c = children[i];
    children[i] = undefined;
    if (c === undefined || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGKILL");
    });
  };
  const stop = async () => {
    for (let i = 0; i < MASTERS; i++) await kill(i);
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    await Promise.all(ports.map((_, i) => launch(i)));
    const create = spawnSync(
      "redis-cli",
      ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-yes"],
      { encoding: "utf8", timeout: WHOLE_TIMEOUT_MS },
    );
    if (create.status !== 0) {
      throw new Error(`redis-cli --cluster create failed: ${create.stderr || create.stdout}`);
    }
    await waitWhole(ports);
  } catch (err) {
    await stop();
    throw err;
  }
  const index = (i: number) => {
    if (!Number.isInteger(i) || i < 0 || i >= MASTERS) throw new Error(`no cluster node ${i}`);
    return i;
  };
  return {
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(",")}`,
    ports,
    killNode: (i) => kill(index(i)),
    restartNode: async (i) => {
      await launch(index(i));
      await waitWhole(ports);
    },
    nodeForKey: (key) => masterForKey(ports, key),
    flushAll: () => flushAll(ports),
    stop,
  };
}

/** Resolves once `client` is ready for commands (a cluster client first learns the slots). */
export async function untilReady(client: RedisClient, timeoutMs = 30_000): Promise<void> {
  if (client.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off("ready", onReady);
      reject(new Error(`redis client not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    client.once("ready", onReady);
  });
}

/**
 * One cluster for the enclosing `describe` (started in `before`, stopped in
 * `after`) and ready clients on it, all disconnected in `after`. The
 * clients fail fast like the router's (LEDGER_REDIS_OPTIONS) unless told
 * otherwise.
 */
export function useRedisCluster(): {
  cluster(): TestRedisCluster;
  client(options?: RedisClientOptions): Promise<RedisClient>;
  /** A client as a program opens it: not yet ready. */
  open(options?: RedisClientOptions): Promise<RedisClient>;
} {
  let cluster: TestRedisCluster | undefined;
  const clients: RedisClient[] = [];
  before(async function () {
    this.timeout(WHOLE_TIMEOUT_MS + 10_000);
    cluster = await startRedisCluster();
  });
  after(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    await cluster?.stop();
  });
  const open = async (options: RedisClientOptions = LEDGER_REDIS_OPTIONS) => {
    const c = await openRedis(started().url, options);
    clients.push(c);
    // A killed node makes the client emit errors; the commands' own failures are what tests check.
    c.on("error", () => {});
    return c;
  };
  const started = () => {
    if (cluster === undefined) throw new Error("the cluster is started in before()");
    return cluster;
  };
  return {
    cluster: started,
    client: async (options = LEDGER_REDIS_OPTIONS) => {
      const c = await open(options);
      await untilReady(c);
      return c;
    },
    open,
  };
}
