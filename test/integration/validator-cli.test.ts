import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { expect } from "chai";
import { Redis } from "ioredis";
import { hotkeyFromMnemonic, initCrypto } from "../../common/identity.js";
import { runCli } from "../support/cli.js";
import { freePort, startRedis } from "../support/redis.js";
import { startRedisCluster } from "../support/redis-cluster.js";
import { okProbe, type RouterStandIn, session, startRouterStandIn } from "../support/validator-router.js";

describe("tensorclaw validator (child process)", () => {
  let dir: string;
  let router: RouterStandIn;
  let mnemonic: string;
  let address: string;

  before(async () => {
    await initCrypto();
    mnemonic = mnemonicGenerate();
    address = (await hotkeyFromMnemonic(mnemonic)).address;
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-vcli-"));
    router = await startRouterStandIn({
      sessions: [session("5MINER")],
      usage: [],
      probe: () => okProbe(30),
    });
  });
  afterEach(async () => {
    await router.close();
    await rm(dir, { recursive: true, force: true });
  });

  const env = () => ({ TENSORCLAW_MNEMONIC: mnemonic, TENSORCLAW_LOG_LEVEL: "silent" });

  it("--once --dry-run probes, prints the score table and stores the history", async () => {
    const state = join(dir, "state.json");
    const r = await runCli(
      ["validator", "--once", "--dry-run", "--router", router.url, "--state-file", state],
      env(),
    );
    expect(r.stderr).to.equal("");
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/^uid\s+hotkey\s+avail/m);
    expect(r.stdout).to.match(/-\s+5MINER\s+yes\s+pass\s+100\s+100\.0\s+0\s+0\.00\s+10\.00\s+65535/);
    expect(router.calls.every((c) => c.hotkey === address)).to.equal(true);
    expect(router.calls.map((c) => c.method.split("/")[2])).to.include.members([
      "ListMiners",
      "Probe",
      "GetUsage",
    ]);
    const doc = JSON.parse(await readFile(state, "utf8")) as { probes: Record<string, unknown[]> };
    expect(doc.probes["5MINER"]).to.have.length(1);
    // The mnemonic never reaches the output.
    // (Any three of its words in a row: one word alone, say "bus", can sit inside "business".)
    const words = mnemonic.split(" ");
    for (let i = 0; i + 3 <= words.length; i++) {
      expect(r.stdout + r.stderr).to.not.contain(words.slice(i, i + 3).join(" "));
    }
  });

  it("`scores` prints the table from stored history without probing", async () => {
    const state = join(dir, "state.json");
    await runCli(["validator", "--once", "--dry-run", "--router", router.url, "--state-file", state], env());
    const probes = router.calls.filter((c) => c.method.endsWith("/Probe")).length;
    const r = await runCli(["validator", "scores", "--router", router.url, "--state-file", state], env());
    expect(r.code).to.equal(0);
    expect(r.stdout).to.match(/5MINER\s+yes\s+pass/);
    expect(router.calls.filter((c) => c.method.endsWith("/Probe")).length).to.equal(probes);
  });

  it("exits 1 and says so when the router is unreachable", async () => {
    const r = await runCli(
      [
        "validator",
        "--once",
        "--dry-run",
        "--router",
        `grpc://127.0.0.1:${await freePort()}`,
        "--state-file",
        join(dir, "s.json"),
      ],
      env(),
    );
    expect(r.code).to.equal(1);
    expect(r.stdout).to.contain("router unreachable, not punishing miners");
  });

  it("exits 1 naming the endpoint when the chain cannot be reached (and does not hang retrying)", async () => {
    const chain = `ws://127.0.0.1:${await freePort()}`;
    const r = await runCli(
      ["validator", "--once", "--router", router.url, "--chain", chain, "--state-file", join(dir, "s.json")],
      env(),
    );
    expect(r.code).to.equal(1);
    expect(r.stderr).to.contain(`cannot reach Subtensor at ${chain}`);
  });

  it("keeps its history in Redis with --redis-url, namespaced by its hotkey", async () => {
    const redis = await startRedis();
    const c = new Redis(redis.url);
    try {
      const r = await runCli(
        ["validator", "--once", "--dry-run", "--router", router.url, "--redis-url", redis.url],
        env(),
      );
      expect(r.code).to.equal(0);
      const keys = (await c.keys("tc:validator:*")).sort();
      expect(keys).to.include(`tc:validator:{${address}}:probes:5MINER`);
      const stored = await c.lrange(`tc:validator:{${address}}:probes:5MINER`, 0, -1);
      expect(stored).to.have.length(1);
      expect(JSON.parse(stored[0] ?? "{}")).to.include({ ok: true, latencyMs: 30 });
    } finally {
      c.disconnect();
      await redis.stop();
    }
  });

  it("keeps its history on a Redis Cluster with --redis-url redis+cluster://…", async function () {
    this.timeout(120_000);
    const cluster = await startRedisCluster();
    try {
      const r = await runCli(
        ["validator", "--once", "--dry-run", "--router", router.url, "--redis-url", cluster.url],
        env(),
      );
      expect(r.code, r.stderr).to.equal(0);
      // Every key of the validator's state shares its hash tag: one master holds them all.
      const key = `tc:validator:{${address}}:probes:5MINER`;
      const port = cluster.ports[await cluster.nodeForKey(key)] as number;
      const c = new Redis(port, "127.0.0.1");
      try {
        const stored = await c.lrange(key, 0, -1);
        expect(stored).to.have.length(1);
        expect(JSON.parse(stored[0] ?? "{}")).to.include({ ok: true, latencyMs: 30 });
        expect(await c.sismember(`tc:validator:{${address}}:miners`, "5MINER")).to.equal(1);
      } finally {
        c.disconnect();
      }
    } finally {
      await cluster.stop();
    }
  });
});
