import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Redis } from "ioredis";
import { type Logger, pino } from "pino";
import type { RedisClient } from "../../common/redis-connect.js";
import { hashUser } from "../../router/api/openai-request.js";
import { resolveUserSalt, userSaltKey } from "../../router/api/user-salt.js";
import { LEDGER_REDIS_OPTIONS } from "../../router/ledger/redis.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";
import { useRedisCluster } from "../support/redis-cluster.js";

function memoryLogger(): { logger: Logger; warnings: () => string[] } {
  const lines: string[] = [];
  const logger = pino(
    { level: "info" },
    {
      write: (line: string) => {
        lines.push(line);
      },
    },
  );
  return {
    logger,
    warnings: () =>
      lines
        .map((l) => JSON.parse(l) as { level: number; msg: string })
        .filter((l) => l.level === 40)
        .map((l) => l.msg),
  };
}

/**
 * Five replicas starting at once on `open()`'s clients (not yet connected,
 * as the router's): SET NX lets exactly one salt win, every replica uses
 * it and keeps a copy. Returns the salt.
 */
async function expectOneSharedSalt(
  open: () => Promise<RedisClient>,
  admin: RedisClient,
  prefix: string,
  file: (name: string) => string,
): Promise<string> {
  const { logger } = memoryLogger();
  const all = await Promise.all(
    ["a", "b", "c", "d", "e"].map(async (name) =>
      resolveUserSalt({ configured: undefined, redis: await open(), prefix, file: file(name), logger }),
    ),
  );
  const salts = new Set(all.map((r) => r.salt));
  expect(salts.size).to.equal(1);
  expect(all.map((r) => r.origin)).to.deep.equal(["redis", "redis", "redis", "redis", "redis"]);
  const [salt] = [...salts] as [string];
  expect(salt).to.match(/^[0-9a-f]{64}$/);
  expect(await admin.get(userSaltKey(prefix))).to.equal(salt);
  const hashes = all.map((r) => hashUser("alice", "key_0123", r.salt));
  expect(new Set(hashes).size).to.equal(1);
  // Each keeps a copy for a restart while Redis is down.
  expect((await readFile(file("c"), "utf8")).trim()).to.equal(salt);
  return salt;
}

describe("user salt on a Redis Cluster (3 masters)", () => {
  const redis = useRedisCluster();
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-user-salt-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("routers sharing one cluster resolve the same salt", async () => {
    await expectOneSharedSalt(
      () => redis.open(),
      await redis.client({}),
      randomPrefix(),
      (name) => join(dir, name, "user-salt"),
    );
  });
});

describe("user salt: the secret of the `user` hash, shared by replicas", () => {
  let redis: TestRedis;
  let killed = false;
  let dir: string;
  const clients: Redis[] = [];
  /** A client as the router makes it (no offline queue), not yet connected. */
  const routerClient = () => {
    const c = new Redis(redis.url, { ...LEDGER_REDIS_OPTIONS });
    c.on("error", () => {});
    clients.push(c);
    return c;
  };
  /** A client for the test's own reads (queues commands until connected). */
  const adminClient = () => {
    const c = new Redis(redis.url);
    clients.push(c);
    return c;
  };
  const file = (name: string) => join(dir, name, "user-salt");

  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-user-salt-"));
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.disconnect();
    if (killed) await redis.restart();
    killed = false;
    await rm(dir, { recursive: true, force: true });
  });

  it("routers sharing one Redis resolve the same salt, so the same account+user hashes the same", async () => {
    const prefix = randomPrefix();
    const { logger } = memoryLogger();
    const salt = await expectOneSharedSalt(async () => routerClient(), adminClient(), prefix, file);
    // Another deployment (prefix) on the same Redis has its own.
    const other = await resolveUserSalt({
      configured: undefined,
      redis: routerClient(),
      prefix: randomPrefix(),
      file: undefined,
      logger,
    });
    expect(other.salt).not.to.equal(salt);
  });

  it("--user-salt overrides the shared salt and leaves Redis and the data folder alone", async () => {
    const prefix = randomPrefix();
    const { logger } = memoryLogger();
    const shared = await resolveUserSalt({
      configured: undefined,
      redis: routerClient(),
      prefix,
      file: undefined,
      logger,
    });
    const configured = "operator-chosen-salt-0123456789";
    const r = await resolveUserSalt({ configured, redis: routerClient(), prefix, file: file("a"), logger });
    expect(r).to.deep.equal({ salt: configured, origin: "configured" });
    expect(hashUser("alice", "key_0123", r.salt)).not.to.equal(hashUser("alice", "key_0123", shared.salt));
    expect(await adminClient().get(userSaltKey(prefix))).to.equal(shared.salt);
    expect(await stat(file("a")).catch(() => undefined)).to.equal(undefined);
  });

  it("without Redis: a random salt kept in the data folder (mode 0600) across restarts", async () => {
    const { logger } = memoryLogger();
    const first = await resolveUserSalt({ configured: undefined, redis: undefined, file: file("a"), logger });
    expect(first.origin).to.equal("new");
    expect((await stat(file("a"))).mode & 0o777).to.equal(0o600);
    const again = await resolveUserSalt({ configured: undefined, redis: undefined, file: file("a"), logger });
    expect(again).to.deep.equal({ salt: first.salt, origin: "file" });
    const elsewhere = await resolveUserSalt({
      configured: undefined,
      redis: undefined,
      file: file("b"),
      logger,
    });
    expect(elsewhere.salt).not.to.equal(first.salt);
    const nowhere = await resolveUserSalt({
      configured: undefined,
      redis: undefined,
      file: undefined,
      logger,
    });
    expect(nowhere.origin).to.equal("new");
    expect(nowhere.salt).not.to.equal(first.salt);
  });

  it("a router moving onto Redis offers its saved salt; a router joining later adopts the shared one", async () => {
    const prefix = randomPrefix();
    const { logger } = memoryLogger();
    const local = await resolveUserSalt({ configured: undefined, redis: undefined, file: file("a"), logger });
    const moved = await resolveUserSalt({
      configured: undefined,
      redis: routerClient(),
      prefix,
      file: file("a"),
      logger,
    });
    expect(moved).to.deep.equal({ salt: local.salt, origin: "redis" });
    // B ran alone before with its own salt: Redis's wins and replaces B's copy.
    const before = await resolveUserSalt({
      configured: undefined,
      redis: undefined,
      file: file("b"),
      logger,
    });
    expect(before.salt).not.to.equal(local.salt);
    const joined = await resolveUserSalt({
      configured: undefined,
      redis: routerClient(),
      prefix,
      file: file("b"),
      logger,
    });
    expect(joined.salt).to.equal(local.salt);
    expect((await readFile(file("b"), "utf8")).trim()).to.equal(local.salt);
  });

  it("Redis unreachable at startup: the saved copy keeps the shared salt; without one, a new salt and a warning", async () => {
    const prefix = randomPrefix();
    const log = memoryLogger();
    const logger = log.logger;
    const shared = await resolveUserSalt({
      configured: undefined,
      redis: routerClient(),
      prefix,
      file: file("a"),
      logger,
    });
    await redis.kill();
    killed = true;
    const down = { configured: undefined, redis: routerClient(), prefix, logger, waitMs: 300 };
    const restarted = await resolveUserSalt({ ...down, file: file("a") });
    expect(restarted).to.deep.equal({ salt: shared.salt, origin: "file" });
    expect(log.warnings()).to.have.length(1);
    const blank = await resolveUserSalt({ ...down, file: file("b") });
    expect(blank.origin).to.equal("new");
    expect(blank.salt).not.to.equal(shared.salt);
    expect(log.warnings()[1]).to.match(/--user-salt/);
  });
});
