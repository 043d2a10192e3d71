import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { LEDGER_REDIS_OPTIONS } from "../../router/ledger/redis.js";
import { freePort, waitForRedisPing } from "./redis.js";

/**
 * Redis clients a test opens the way the router does (the ledger's options:
 * commands fail at once while Redis is unreachable, instead of queueing),
 * so killing Redis shows what the router would see. Close them all in
 * afterEach.
 */
export function routerRedisClients(url: () => string): { open(): Promise<Redis>; closeAll(): void } {
  const clients: Redis[] = [];
  return {
    async open() {
      const c = new Redis(url(), { ...LEDGER_REDIS_OPTIONS });
      c.on("error", () => {}); // reconnects are expected; failed commands reject
      clients.push(c);
      await once(c, "ready");
      return c;
    },
    closeAll() {
      for (const c of clients.splice(0)) c.disconnect();
    },
  };
}

/**
 * A private redis-server WITH persistence (append-only file, fsync on every
 * write), so a SIGKILL and restart keeps every write Redis acknowledged, as
 * a production ledger Redis must. (test/support/redis.ts runs without
 * persistence, which suits every other test.)
 */
export interface PersistentRedis {
  readonly url: string;
  kill(): Promise<void>;
  /** Starts the server again after `kill` (no-op while it runs). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a persistent private redis-server on a free port. */
export async function startPersistentRedis(): Promise<PersistentRedis> {
  const dir = await mkdtemp(join(tmpdir(), "tc-ledger-redis-"));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const launch = async () => {
    // Restarting a running server would race a second one for the port.
    if (child !== undefined && child.exitCode === null) return;
    child = spawn(
      "redis-server",
      [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "always",
        "--dir",
        dir,
      ],
      { stdio: "ignore" },
    );
    // While the AOF loads Redis answers LOADING; PING succeeds only after.
    await waitForRedisPing(url, 10_000, 25);
  };
  const kill = async () => {
    const c = child;
    child = undefined;
    if (c === undefined || c.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      c.once("exit", () => resolve());
      c.kill("SIGKILL");
    });
  };
  await launch();
  return {
    url,
    kill,
    restart: launch,
    stop: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
