import { appendFile, mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Redis } from "ioredis";
import type { Command } from "../../common/command.js";
import { checkEntry, defaultEntry } from "../../router/catalogue/entry.js";
import { modelsCommand } from "../../router/catalogue/models-command.js";
import type { CatalogueStore } from "../../router/catalogue/store.js";
import { FileCatalogueStore } from "../../router/catalogue/store-file.js";
import { RedisCatalogueStore } from "../../router/catalogue/store-redis.js";
import { tiersCommand } from "../../router/catalogue/tiers-command.js";
import { CatalogueWatcher } from "../../router/catalogue/watcher.js";
import { EmbeddedLedger } from "../../router/ledger/embedded.js";
import { RedisLedger } from "../../router/ledger/redis.js";
import { runCli } from "../support/cli.js";
import { FakeClock } from "../support/fake-clock.js";
import { CONTRACT_OPTIONS, T0, usageEvent } from "../support/ledger-contract.js";
import { memoryLogger } from "../support/memory-logger.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";
import { useRedisCluster } from "../support/redis-cluster.js";

/** Runs a catalogue command in this process (the code the CLI runs), capturing its output. */
async function run(cmd: Command, argv: string[], env: Record<string, string | undefined> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await cmd.run(argv, {
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

const LLAMA = checkEntry({
  id: "llama-3.1-70b-instruct",
  tier: 2,
  tokenizer: "cl100k_base",
  contextLength: 131_072,
  pricePromptPerM: 0.2,
  priceCompletionPerM: 0.6,
  aliases: ["llama-70b"],
});

const HOUR = { nowMs: T0, windowMs: 3_600_000 };

describe("model catalogue", function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let client: Redis;
  let dir: string;
  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    dir = await mkdtemp(join(tmpdir(), "tc-catalogue-"));
  });
  after(async () => {
    client.disconnect();
    await redis.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const cluster = useRedisCluster();
  // One contract, every store.
  for (const [name, make] of [
    ["redis", async () => new RedisCatalogueStore(client, randomPrefix())],
    ["redis cluster", async () => new RedisCatalogueStore(await cluster.client(), randomPrefix())],
    ["file", async () => new FileCatalogueStore(join(dir, `${randomPrefix()}.jsonl`))],
  ] as const) {
    describe(`${name} store`, () => {
      let store: CatalogueStore;
      beforeEach(async () => {
        store = await make();
      });

      it("keeps entries with every field, replaces them on set and forgets them on remove", async () => {
        expect((await store.read()).entries).to.deep.equal([]);
        await store.set(LLAMA, T0);
        await store.set(defaultEntry("qwen-7b", 0.5), T0);
        expect((await store.read()).entries).to.deep.equal([LLAMA, defaultEntry("qwen-7b", 0.5)]);
        const cheaper = checkEntry({ ...LLAMA, pricePromptPerM: 0.1, aliases: [] });
        await store.set(cheaper, T0 + 1);
        expect((await store.read()).entries[0]).to.deep.equal(cheaper);
        expect(await store.remove("qwen-7b", T0 + 2)).to.equal(true);
        expect(await store.remove("qwen-7b", T0 + 3)).to.equal(false);
        expect((await store.read()).entries.map((e) => e.id)).to.deep.equal([LLAMA.id]);
      });

      it("changes its version on every change and only then", async () => {
        const v0 = await store.version();
        expect(await store.version()).to.equal(v0);
        await store.set(LLAMA, T0);
        const v1 = await store.version();
        expect(v1).to.not.equal(v0);
        expect(await store.version()).to.equal(v1);
        await store.remove(LLAMA.id, T0);
        expect(await store.version()).to.not.equal(v1);
      });

      it("refuses an invalid entry without storing anything", async () => {
        for (const bad of [
          { ...LLAMA, tier: -1 },
          { ...LLAMA, tokenizer: "llama3" as "o200k_base" },
          { ...LLAMA, contextLength: 1.5 },
          { ...LLAMA, pricePromptPerM: Number.NaN },
          { ...LLAMA, id: "two words" },
        ]) {
          let caught: unknown;
          try {
            await store.set(bad, T0);
          } catch (err) {
            caught = err;
          }
          expect(String(caught), JSON.stringify(bad)).to.match(/must/);
        }
        expect((await store.read()).entries).to.deep.equal([]);
      });
    });
  }

  it("redis: shares the ledger's tier keys, so usage reports use catalogue tiers, and audits each change", async () => {
    const prefix = randomPrefix();
    const store = new RedisCatalogueStore(client, prefix);
    const ledger = new RedisLedger(client, CONTRACT_OPTIONS, prefix);
    await store.set(LLAMA, T0);
    await ledger.record([usageEvent({ model: LLAMA.id, promptTokens: 8000, completionTokens: 2000 })], T0);
    expect((await ledger.usage(HOUR)).miners[0]?.businessPoints).to.equal(2);
    await store.remove(LLAMA.id, T0);
    expect((await ledger.usage(HOUR)).miners[0]?.businessPoints).to.equal(1);
    const log = (await ledger.tierLog()) as { op: string; model: string }[];
    expect(log.map((e) => [e.op, e.model])).to.deep.equal([
      ["model-remove", LLAMA.id],
      ["model-set", LLAMA.id],
    ]);
    // A tier set through the ledger is a catalogue model too, with default details, and bumps the version.
    const before = await store.version();
    await ledger.setTier("qwen-7b", 0.5, T0);
    expect((await store.read()).entries).to.deep.equal([defaultEntry("qwen-7b", 0.5)]);
    expect(await store.version()).to.not.equal(before);
  });

  it("redis: leaves out stored entries whose details are corrupt, counting them", async () => {
    const store = new RedisCatalogueStore(client, randomPrefix());
    await store.set(LLAMA, T0);
    await client.hset(
      store.keys.catalogueModels,
      "bad",
      "{not json",
      "worse",
      JSON.stringify({ tokenizer: "x" }),
    );
    await client.hset(store.keys.tiers, "bad", "1", "worse", "1");
    expect(await store.read()).to.deep.equal({ entries: [LLAMA], skipped: 2 });
  });

  it("file: skips torn and corrupt lines, counting them, and keeps appending after a torn line", async () => {
    const file = join(dir, "torn.jsonl");
    const store = new FileCatalogueStore(file);
    await store.set(LLAMA, T0);
    await appendFile(file, '{"at_ms":1,"op":"set","id":"half');
    await store.set(defaultEntry("qwen-7b"), T0);
    await appendFile(file, "garbage\n");
    expect(await store.read()).to.deep.equal({ entries: [LLAMA, defaultEntry("qwen-7b")], skipped: 2 });
  });

  it("a watcher picks up a change at its next refresh and tells its listeners", async () => {
    const store = new FileCatalogueStore(join(dir, "watched.jsonl"));
    const watcher = new CatalogueWatcher(store, false, memoryLogger().logger);
    await watcher.start(60_000);
    try {
      expect(watcher.current.closedAndEmpty).to.equal(true);
      const seen: string[][] = [];
      watcher.onChange((c) => seen.push(c.entries.map((e) => e.id)));
      await store.set(LLAMA, T0);
      expect(await watcher.refresh()).to.equal(true);
      expect(await watcher.refresh()).to.equal(false);
      expect(watcher.current.resolve("llama-70b")?.id).to.equal(LLAMA.id);
      expect(seen).to.deep.equal([[LLAMA.id]]);
    } finally {
      watcher.stop();
    }
  });

  it("a running watcher reads the store again every refresh period (fake clock)", async () => {
    const store = new FileCatalogueStore(join(dir, "polled.jsonl"));
    const clock = new FakeClock(T0);
    const watcher = new CatalogueWatcher(store, false, memoryLogger().logger, clock);
    await watcher.start(2_000);
    try {
      const changed = new Promise<string[]>((resolve) =>
        watcher.onChange((c) => resolve(c.entries.map((e) => e.id))),
      );
      await store.set(LLAMA, T0);
      await clock.advance(1_999);
      expect(watcher.current.entries).to.deep.equal([]);
      await clock.advance(1);
      expect(await changed).to.deep.equal([LLAMA.id]);
    } finally {
      watcher.stop();
    }
    expect(clock.pending).to.equal(0);
  });

  it("a watcher keeps the last catalogue while the store cannot be read, and says so once", async () => {
    const file = join(dir, "flaky.jsonl");
    const store = new FileCatalogueStore(file);
    await store.set(LLAMA, T0);
    const log = memoryLogger();
    const watcher = new CatalogueWatcher(store, false, log.logger);
    await watcher.start(60_000);
    try {
      // A folder where the file was: stat works (a new version), reading fails.
      await rm(file);
      await mkdir(file);
      expect(await watcher.refresh()).to.equal(false);
      expect(await watcher.refresh()).to.equal(false);
      expect(watcher.current.entries.map((e) => e.id)).to.deep.equal([LLAMA.id]);
      expect(log.lines().filter((l) => /keeping the last one/.test(l.msg))).to.have.length(1);
    } finally {
      watcher.stop();
    }
  });

  describe("tensorclaw router models", () => {
    it("sets, merges, lists and removes models in Redis (the real CLI for set)", async () => {
      const prefix = randomPrefix();
      const env = { REDIS_URL: redis.url, TENSORCLAW_REDIS_PREFIX: prefix };
      const set = await runCli(
        [
          ...["router", "models", "set", LLAMA.id, "--tier", "2", "--tokenizer", "cl100k_base"],
          ...["--context-length", "131072", "--price-prompt", "0.20", "--price-completion", "0.60"],
          ...["--alias", "llama-70b"],
        ],
        env,
      );
      expect(set.code, set.stderr).to.equal(0);
      expect((await new RedisCatalogueStore(client, prefix).read()).entries).to.deep.equal([LLAMA]);
      // Fields not given keep their values.
      expect((await run(modelsCommand, ["set", LLAMA.id, "--tier", "3"], env)).code).to.equal(0);
      expect((await run(modelsCommand, ["set", "qwen-7b"], env)).code).to.equal(0);
      expect((await run(modelsCommand, ["list"], env)).stdout).to.equal(
        `${LLAMA.id}\t3\tcl100k_base\t131072\t0.2/0.6\taliases=llama-70b\nqwen-7b\t1\to200k_base\t0\t0/0\n`,
      );
      expect((await run(modelsCommand, ["remove", "qwen-7b"], env)).stdout).to.match(/removed qwen-7b/);
      const again = await run(modelsCommand, ["remove", "qwen-7b"], env);
      expect(again.code).to.equal(1);
      expect(again.stderr).to.match(/not in the catalogue/);
    });

    it("refuses bad input with exit 2 and changes nothing", async () => {
      const env = { TENSORCLAW_CATALOGUE_FILE: join(dir, "bad-models.jsonl") };
      expect((await run(modelsCommand, ["set", "a", "--alias", "x"], env)).code).to.equal(0);
      for (const args of [
        ["set", "m", "--tokenizer", "llama3"],
        ["set", "m", "--tier", "-1"],
        ["set", "m", "--context-length", "1.5"],
        ["set", "m", "--price-prompt", "cheap"],
        ["set"],
        ["list", "--tier", "2"],
        ["set", "b", "--alias", "x"],
        ["set", "x"],
        ["frobnicate"],
      ]) {
        const r = await run(modelsCommand, args, env);
        expect(r.code, args.join(" ")).to.equal(2);
        expect(r.stderr).to.match(/^tensorclaw router models: /);
      }
      expect((await run(modelsCommand, ["list"], env)).stdout).to.equal(
        "a\t1\to200k_base\t0\t0/0\taliases=x\n",
      );
    });
  });

  describe("tensorclaw router tiers (the catalogue's tier column)", () => {
    it("sets, lists and removes tiers in Redis, where the ledger reads them (the real CLI for set)", async () => {
      const prefix = randomPrefix();
      const env = { REDIS_URL: redis.url, TENSORCLAW_REDIS_PREFIX: prefix };
      const r = await runCli(["router", "tiers", "set", "llama-70b", "2.5", "--redis-prefix", prefix], {
        REDIS_URL: redis.url,
      });
      expect(r.code, r.stderr).to.equal(0);
      expect((await run(tiersCommand, ["set", "qwen-7b", "0.5"], env)).code).to.equal(0);
      expect((await run(tiersCommand, ["list"], env)).stdout).to.equal("llama-70b\t2.5\nqwen-7b\t0.5\n");
      const ledger = new RedisLedger(client, CONTRACT_OPTIONS, prefix);
      await ledger.record(
        [usageEvent({ model: "llama-70b", promptTokens: 8000, completionTokens: 2000 })],
        T0,
      );
      expect((await ledger.usage(HOUR)).miners[0]?.businessPoints).to.equal(2.5);
      // A tier change keeps the model's other catalogue fields.
      await run(modelsCommand, ["set", "qwen-7b", "--price-prompt", "1"], env);
      await run(tiersCommand, ["set", "qwen-7b", "0.75"], env);
      expect((await new RedisCatalogueStore(client, prefix).read()).entries[1]).to.deep.include({
        tier: 0.75,
        pricePromptPerM: 1,
      });
      expect((await run(tiersCommand, ["remove", "llama-70b"], env)).code).to.equal(0);
      expect((await ledger.usage(HOUR)).miners[0]?.businessPoints).to.equal(1);
      const again = await run(tiersCommand, ["remove", "llama-70b"], env);
      expect(again.code).to.equal(1);
      expect(again.stderr).to.match(/no tier entry for llama-70b/);
    });

    it("without Redis, changes the catalogue file in --data-dir", async () => {
      const data = await mkdtemp(join(dir, "data-"));
      expect((await run(tiersCommand, ["set", "big", "3", "--data-dir", data])).code).to.equal(0);
      expect((await run(tiersCommand, ["set", "small", "0.25", "--data-dir", data])).code).to.equal(0);
      expect((await run(tiersCommand, ["remove", "small", "--data-dir", data])).code).to.equal(0);
      expect((await run(tiersCommand, ["list", "--data-dir", data])).stdout).to.equal("big\t3\n");
      expect((await new FileCatalogueStore(join(data, "catalogue.jsonl")).read()).entries).to.deep.equal([
        defaultEntry("big", 3),
      ]);
    });

    it("brings an older router's tier lines from the embedded ledger into the catalogue, once", async () => {
      const data = await mkdtemp(join(dir, "legacy-"));
      const ledger = await EmbeddedLedger.open({
        ...CONTRACT_OPTIONS,
        path: join(data, "ledger.jsonl"),
        nowMs: T0,
      });
      await ledger.setTier("old-model", 4, T0);
      await ledger.close();
      expect((await run(tiersCommand, ["list", "--data-dir", data])).stdout).to.equal("old-model\t4\n");
      expect((await run(tiersCommand, ["remove", "old-model", "--data-dir", data])).code).to.equal(0);
      // Not brought in again: the catalogue file exists now.
      expect((await run(tiersCommand, ["list", "--data-dir", data])).stdout).to.match(/catalogue is empty/);
      expect(await readFile(join(data, "catalogue.jsonl"), "utf8")).to.match(
        /"op":"remove","id":"old-model"/,
      );
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
        const r = await run(tiersCommand, [...args, "--catalogue-file", file]);
        expect(r.code, args.join(" ")).to.equal(2);
        expect(r.stderr).to.match(/^tensorclaw router tiers: /);
      }
      expect((await run(tiersCommand, ["list", "--catalogue-file", file])).stdout).to.match(/no tiers set/);
      let caught: unknown;
      try {
        await run(tiersCommand, ["list", "--redis-url", "redis://127.0.0.1:1"]);
      } catch (err) {
        caught = err;
      }
      expect(String(caught)).to.match(/cannot reach Redis/);
    });
  });
});
