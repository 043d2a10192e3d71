import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Redis } from "ioredis";
import { EmbeddedLedger } from "../../router/ledger/embedded.js";
import { RedisLedger } from "../../router/ledger/redis.js";
import { tiersCommand } from "../../router/ledger/tiers-command.js";
import { runCli } from "../support/cli.js";
import { CONTRACT_OPTIONS, T0, usageEvent } from "../support/ledger-contract.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";

/** Runs the tiers command in this process (the same code the CLI runs), capturing its output. */
async function tiers(argv: string[], env: Record<string, string | undefined> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await tiersCommand.run(argv, {
    env,
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
  });
  return { code, stdout, stderr };
}

describe("tensorclaw router tiers", function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let dir: string;
  before(async () => {
    redis = await startRedis();
    dir = await mkdtemp(join(tmpdir(), "tc-tiers-"));
  });
  after(async () => {
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("is reachable as `tensorclaw router tiers` from the real CLI (child process)", async () => {
    const prefix = randomPrefix();
    const r = await runCli(["router", "tiers", "set", "llama-70b", "2.5", "--redis-prefix", prefix], {
      REDIS_URL: redis.url,
    });
    expect(r.code, r.stderr).to.equal(0);
    const client = new Redis(redis.url);
    try {
      expect([...(await new RedisLedger(client, CONTRACT_OPTIONS, prefix).tiers())]).to.deep.equal([
        ["llama-70b", 2.5],
      ]);
    } finally {
      client.disconnect();
    }
  });

  it("sets, lists and removes tiers in Redis, where the ledger reads them", async () => {
    const prefix = randomPrefix();
    const env = { REDIS_URL: redis.url, TENSORCLAW_REDIS_PREFIX: prefix };
    expect((await tiers(["set", "llama-70b", "2.5"], env)).code).to.equal(0);
    expect((await tiers(["set", "qwen-7b", "0.5"], env)).code).to.equal(0);
    expect((await tiers(["list"], env)).stdout).to.equal("llama-70b\t2.5\nqwen-7b\t0.5\n");
    const client = new Redis(redis.url);
    try {
      const ledger = new RedisLedger(client, CONTRACT_OPTIONS, prefix);
      await ledger.record(
        [usageEvent({ model: "llama-70b", promptTokens: 8000, completionTokens: 2000 })],
        T0,
      );
      expect((await ledger.usage({ nowMs: T0, windowMs: 3_600_000 })).miners[0]?.businessPoints).to.equal(
        2.5,
      );
      expect((await tiers(["remove", "llama-70b"], env)).code).to.equal(0);
      expect((await ledger.usage({ nowMs: T0, windowMs: 3_600_000 })).miners[0]?.businessPoints).to.equal(1);
      const again = await tiers(["remove", "llama-70b"], env);
      expect(again.code).to.equal(1);
      expect(again.stderr).to.match(/no tier entry for llama-70b/);
    } finally {
      client.disconnect();
    }
  });

  it("without Redis, changes the embedded ledger's journal file", async () => {
    const file = join(dir, "ledger.jsonl");
    const env = { TENSORCLAW_LEDGER_FILE: file };
    expect((await tiers(["set", "big", "3"], env)).code).to.equal(0);
    expect((await tiers(["set", "small", "0.25"], env)).code).to.equal(0);
    expect((await tiers(["remove", "small"], env)).code).to.equal(0);
    expect((await tiers(["list"], env)).stdout).to.equal("big\t3\n");
    // --data-dir finds the router's embedded ledger file the same way the router does.
    expect((await tiers(["list", "--data-dir", dir])).stdout).to.equal("big\t3\n");
    const ledger = await EmbeddedLedger.open({ ...CONTRACT_OPTIONS, path: file, nowMs: T0 });
    try {
      expect([...(await ledger.tiers())]).to.deep.equal([["big", 3]]);
    } finally {
      await ledger.close();
    }
  });

  it("refuses bad arguments with exit code 2 and reports an unreachable Redis", async () => {
    const file = join(dir, "bad.jsonl");
    for (const args of [
      ["set", "m", "-1"],
      ["set", "m", "0x10"],
      ["set", "m"],
      ["frobnicate"],
      ["set", "m", "1e9"],
    ]) {
      const r = await tiers([...args, "--ledger-file", file]);
      expect(r.code, args.join(" ")).to.equal(2);
      expect(r.stderr).to.match(/^tensorclaw router tiers: /);
    }
    expect((await tiers(["list", "--ledger-file", file])).stdout).to.match(/no tiers set/);
    let caught: unknown;
    try {
      await tiers(["list", "--redis-url", "redis://127.0.0.1:1"]);
    } catch (err) {
      caught = err;
    }
    expect(String(caught)).to.match(/cannot reach Redis/);
  });
});
