import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pollUntil } from "./poll.js";
import { freePort, onRedisAt, waitForRedisPing } from "./redis.js";

/** A Redis master with one replica, both started here, and how to fail them over by hand. */
export interface TestRedisPair {
  readonly masterUrl: string;
  readonly replicaUrl: string;
  /** SIGSTOPs the replica: it stays connected but acknowledges nothing (a replica lagging behind). */
  pauseReplica(): void;
  /** SIGCONTs it. */
  resumeReplica(): void;
  /** SIGKILLs the master. */
  killMaster(): Promise<void>;
  /** Makes the replica a master of its own (`REPLICAOF NO ONE`), as a failover does. */
  promoteReplica(): Promise<void>;
  /** Stops both and removes their folders. */
  stop(): Promise<void>;
}

/**
 * Starts a master and a replica of it (`--replicaof`), no persistence,
 * on free ports; resolves once the master counts its replica online.
 * Always its own servers: an external REDIS_URL has no replica to pause.
 */
export async function startRedisPair(): Promise<TestRedisPair> {
  const dirs = [
    await mkdtemp(join(tmpdir(), "tensorclaw-redis-master-")),
    await mkdtemp(join(tmpdir(), "tensorclaw-redis-replica-")),
  ];
  const [masterPort, replicaPort] = [await freePort(), await freePort()];
  const base = (port: number, dir: string) => [
    ...["--port", String(port), "--bind", "127.0.0.1", "--dir", dir],
    ...["--save", "", "--appendonly", "no"],
  ];
  const children: ChildProcess[] = [];
  const masterUrl = `redis://127.0.0.1:${masterPort}`;
  const replicaUrl = `redis://127.0.0.1:${replicaPort}`;
  const kill = async (c: ChildProcess | undefined) => {
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      // A stopped process must run again to die of SIGKILL's exit handling in time.
      c.kill("SIGCONT");
      c.kill("SIGKILL");
    });
  };
  const stop = async () => {
    for (const c of children) await kill(c);
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  };
  try {
    children.push(spawn("redis-server", base(masterPort, dirs[0] as string), { stdio: "ignore" }));
    await waitForRedisPing(masterUrl, 10_000);
    children.push(
      spawn(
        "redis-server",
        [...base(replicaPort, dirs[1] as string), "--replicaof", "127.0.0.1", String(masterPort)],
        { stdio: "ignore" },
      ),
    );
    await waitForRedisPing(replicaUrl, 10_000);
    await pollUntil(
      () =>
        onRedisAt(
          masterUrl,
          async (r) => /slave0:.*state=online/.test(await r.info("replication")) || undefined,
        ),
      { what: "the replica to be online", timeoutMs: 20_000, intervalMs: 50 },
    );
  } catch (err) {
    await stop();
    throw err;
  }
  const [master, replica] = children as [ChildProcess, ChildProcess];
  return {
    masterUrl,
    replicaUrl,
    pauseReplica: () => replica.kill("SIGSTOP"),
    resumeReplica: () => replica.kill("SIGCONT"),
    killMaster: () => kill(master),
    promoteReplica: () => onRedisAt(replicaUrl, async (r) => void (await r.replicaof("NO", "ONE"))),
    stop,
  };
}
