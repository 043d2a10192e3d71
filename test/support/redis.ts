import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { pollUntil } from "./poll.js";

/** A Redis the tests may use, and how to stop (or restart) it. */
export interface TestRedis {
  readonly url: string;
  readonly port: number;
  /** True when this harness started the server (so it may kill and restart it). */
  readonly owned: boolean;
  /** Kills the server (owned servers only). */
  kill(): Promise<void>;
  /** Starts the server again on the same port (owned servers only). */
  restart(): Promise<void>;
  /** Stops the server and removes its files. */
  stop(): Promise<void>;
}

/** A free TCP port on 127.0.0.1 (asked of the kernel). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

function hasRedisServer(): boolean {
  return spawnSync("redis-server", ["--version"], { stdio: "ignore" }).status === 0;
}

/** Runs `fn` on a short-lived connection to the Redis at `url` that fails fast and never retries. */
export async function onRedisAt<T>(url: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  // Refusals and resets are reported by the commands themselves.
  r.on("error", () => {});
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/**
 * Resolves once the Redis at `url` answers PING (a server process starting,
 * or loading its AOF, which answers LOADING until done).
 */
export async function waitForRedisPing(url: string, timeoutMs: number, intervalMs = 50): Promise<void> {
  // Refusals are expected while the server starts; pollUntil retries.
  await pollUntil(() => onRedisAt(url, async (r) => (await r.ping()) === "PONG"), {
    what: `redis at ${url} to answer PING`,
    timeoutMs,
    intervalMs,
  });
}

/**
 * Starts a private `redis-server` on a free port in a temporary folder, or
 * uses REDIS_URL when it is set. Fails with install advice when neither works.
 */
export async function startRedis(): Promise<TestRedis> {
  const external = process.env.REDIS_URL;
  if (external !== undefined && external !== "") {
    await waitForRedisPing(external, 5000);
    const port = Number(new URL(external).port || 6379);
    const refuse = async () => {
      throw new Error("cannot kill or restart the external REDIS_URL server");
    };
    return { url: external, port, owned: false, kill: refuse, restart: refuse, stop: async () => {} };
  }
  if (!hasRedisServer()) {
    throw new Error(
      "integration tests need Redis: install it (Debian/Ubuntu: `apt-get install redis-server`, macOS: " +
        "`brew install redis`) so `redis-server` is on PATH, or set REDIS_URL to a Redis you can use for tests",
    );
  }
  const dir = await mkdtemp(join(tmpdir(), "tensorclaw-redis-"));
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  const launch = async () => {
    child = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir],
      { stdio: "ignore" },
    );
    await waitForRedisPing(url, 5000);
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
    port,
    owned: true,
    kill,
    restart: launch,
    stop: async () => {
      await kill();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A random key prefix, so each test owns its keys and nothing is flushed. */
export function randomPrefix(): string {
  return `tct:${randomBytes(6).toString("hex")}:`;
}
