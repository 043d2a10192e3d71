import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import type { UsageReport } from "../../router/ledger/ledger.js";
import { RedisLedger } from "../../router/ledger/redis.js";
import { type RecorderStats, UsageRecorder } from "../../router/usage/recorder.js";
import { UsageSpool } from "../../router/usage/spool.js";
import { CONTRACT_OPTIONS } from "../support/ledger-contract.js";
import { expectedTotals, writerEvent } from "../support/ledger-events.js";
import {
  type PersistentRedis,
  routerRedisClients,
  startPersistentRedis,
} from "../support/ledger-redis-server.js";
import { randomPrefix } from "../support/redis.js";

const CHILD = fileURLToPath(new URL("../support/ledger-writer-child.ts", import.meta.url));

function totals(r: UsageReport): Map<string, { tokens: number; requests: number }> {
  const out = new Map<string, { tokens: number; requests: number }>();
  for (const m of r.miners) {
    for (const x of m.models) {
      out.set(`${m.hotkey}/${x.model}`, {
        tokens: x.promptTokens + x.completionTokens,
        requests: x.requests,
      });
    }
  }
  return out;
}

function sorted<V>(m: Map<string, V>): [string, V][] {
  return [...m].sort(([a], [b]) => (a < b ? -1 : 1));
}

/** A writer child process and a way to wait for its progress lines. */
class Child {
  readonly proc: ChildProcessWithoutNullStreams;
  settled = 0;
  done: RecorderStats | undefined;
  readonly exited: Promise<number | null>;
  #buf = "";
  #watchers: (() => void)[] = [];
  stderr = "";

  constructor(env: Record<string, string>) {
    this.proc = spawn(
      process.execPath,
      ["--import", new URL("../../bin/register.mjs", import.meta.url).href, CHILD],
      { env: { ...process.env, ...env } },
    );
    this.exited = new Promise((resolve) => this.proc.once("exit", (code) => resolve(code)));
    this.proc.stderr.on("data", (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.proc.stdout.on("data", (d: Buffer) => {
      this.#buf += d.toString();
      for (let nl = this.#buf.indexOf("\n"); nl !== -1; nl = this.#buf.indexOf("\n")) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        if (line.startsWith("settled ")) this.settled = Number(line.slice(8));
        if (line.startsWith("done ")) this.done = JSON.parse(line.slice(5)) as RecorderStats;
        for (const w of this.#watchers.splice(0)) w();
      }
    });
    this.proc.once("exit", () => {
      for (const w of this.#watchers.splice(0)) w();
    });
  }

  /** Resolves once `pred` holds after a progress line (or rejects when the child exits first). */
  async until(pred: () => boolean): Promise<void> {
    while (!pred()) {
      if (this.proc.exitCode !== null) throw new Error(`writer exited early: ${this.stderr}`);
      await new Promise<void>((r) => this.#watchers.push(r));
    }
  }
}

describe("usage recorder against a real Redis (persistent, killed and restarted)", function () {
  this.timeout(60_000);
  let redis: PersistentRedis;
  let dir: string;
  const clients = routerRedisClients(() => redis.url);
  const client = () => clients.open();
  before(async () => {
    redis = await startPersistentRedis();
  });
  after(async () => {
    await redis.stop();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-recorder-"));
  });
  afterEach(async () => {
    clients.closeAll();
    await redis.restart().catch(() => {}); // a test may leave it killed
    await rm(dir, { recursive: true, force: true });
  });

  it("loses nothing and counts nothing twice when Redis is killed and restarted mid-traffic", async () => {
    const prefix = randomPrefix();
    const ledger = new RedisLedger(await client(), CONTRACT_OPTIONS, prefix);
    const spool = await UsageSpool.open({ dir });
    const recorder = new UsageRecorder({ ledger, spool, retryMinMs: 10, retryMaxMs: 100 });
    const N = 30_000;
    let sawDegraded = false;
    for (let i = 0; i < N; i += 1000) {
      if (i === 10_000) await redis.kill();
      if (i === 20_000) {
        sawDegraded = recorder.stats().degraded && recorder.spoolDepth() > 0 && recorder.lagMs() >= 0;
        expect(recorder.ready()).to.equal(true); // spooling keeps the router ready
        await redis.restart();
      }
      for (let j = i; j < i + 1000; j++) recorder.record(writerEvent("w", j, Date.now()));
      await recorder.settled();
    }
    await recorder.idle();
    const stats = recorder.stats();
    expect(sawDegraded).to.equal(true);
    expect(stats.spooled).to.be.greaterThan(9_000);
    expect(stats.replayed).to.equal(stats.spooled);
    expect(stats.spoolDepth).to.equal(0);
    expect(stats.dropped).to.equal(0);
    expect(stats.counted + stats.duplicates).to.equal(N);
    const report = await new RedisLedger(await client(), CONTRACT_OPTIONS, prefix).usage({
      nowMs: Date.now(),
      windowMs: CONTRACT_OPTIONS.retentionMs,
    });
    expect(sorted(totals(report))).to.deep.equal(sorted(expectedTotals("w", 0, N)));
    expect(report.miners.reduce((n, m) => n + m.requests, 0)).to.equal(N);
    await recorder.close();
    await spool.close();
  });

  it("two router processes sharing one Redis count overlapping request ids once", async () => {
    const prefix = randomPrefix();
    const common = { LEDGER_REDIS_URL: redis.url, LEDGER_PREFIX: prefix, LEDGER_WRITER: "s" };
    const a = new Child({
      ...common,
      LEDGER_SPOOL_DIR: join(dir, "a"),
      LEDGER_FROM: "0",
      LEDGER_COUNT: "4000",
    });
    const b = new Child({
      ...common,
      LEDGER_SPOOL_DIR: join(dir, "b"),
      LEDGER_FROM: "2000",
      LEDGER_COUNT: "6000",
    });
    expect(await a.exited, a.stderr).to.equal(0);
    expect(await b.exited, b.stderr).to.equal(0);
    const sa = a.done as RecorderStats;
    const sb = b.done as RecorderStats;
    expect(sa.counted + sb.counted).to.equal(6000);
    expect(sa.duplicates + sb.duplicates).to.equal(2000);
    const report = await new RedisLedger(await client(), CONTRACT_OPTIONS, prefix).usage({
      nowMs: Date.now(),
      windowMs: CONTRACT_OPTIONS.retentionMs,
    });
    expect(sorted(totals(report))).to.deep.equal(sorted(expectedTotals("s", 0, 6000)));
  });

  it("keeps a SIGKILLed router's spool and replays exactly its settled prefix", async () => {
    const prefix = randomPrefix();
    await redis.kill();
    const child = new Child({
      LEDGER_REDIS_URL: redis.url,
      LEDGER_PREFIX: prefix,
      LEDGER_WRITER: "k",
      LEDGER_SPOOL_DIR: dir,
      LEDGER_COUNT: "1000000",
      LEDGER_CHUNK: "250",
    });
    await child.until(() => child.settled >= 3000);
    child.proc.kill("SIGKILL");
    await child.exited;
    const settled = child.settled;
    await redis.restart();
    const spool = await UsageSpool.open({ dir });
    expect(spool.depth).to.be.at.least(settled);
    const ledger = new RedisLedger(await client(), CONTRACT_OPTIONS, prefix);
    const recorder = new UsageRecorder({ ledger, spool, retryMinMs: 10, retryMaxMs: 50 });
    await recorder.idle();
    expect(spool.depth).to.equal(0);
    const report = await ledger.usage({ nowMs: Date.now(), windowMs: CONTRACT_OPTIONS.retentionMs });
    const requests = report.miners.reduce((n, m) => n + m.requests, 0);
    // Everything acknowledged as settled is there; what was there is an exact prefix, once.
    expect(requests).to.be.at.least(settled);
    expect(sorted(totals(report))).to.deep.equal(sorted(expectedTotals("k", 0, requests)));
    await recorder.close();
    await spool.close();
  });

  for (const [kind, origin] of [
    ["request ids", undefined],
    ["origin/seq", "0123456789abcdef"],
  ] as const)
    it(`a crash between replay and acknowledgement double-counts nothing (${kind})`, async () => {
      const prefix = randomPrefix();
      const spool = await UsageSpool.open({ dir });
      const now = Date.now();
      await spool.append(Array.from({ length: 500 }, (_, i) => writerEvent("r", i, now, origin)));
      const c = await client();
      const ledger = new RedisLedger(c, CONTRACT_OPTIONS, prefix);
      // Replay the first part, then "crash" before the ack.
      const first = await spool.read(200);
      expect(first?.events).to.have.length(200);
      await ledger.record(first?.events ?? [], now);
      await spool.close();
      const again = await UsageSpool.open({ dir });
      expect(again.depth).to.equal(500);
      const recorder = new UsageRecorder({ ledger, spool: again });
      await recorder.idle();
      expect(recorder.stats()).to.include({ replayed: 500, counted: 300, duplicates: 200 });
      const report = await ledger.usage({ nowMs: now, windowMs: CONTRACT_OPTIONS.retentionMs });
      expect(sorted(totals(report))).to.deep.equal(sorted(expectedTotals("r", 0, 500)));
      // The replay was recognised by the key the events were spooled with.
      const keys = await c.keys(`${prefix}*`);
      const seen = keys.filter((k) => k.includes(":seen:")).length;
      const ids = keys.filter((k) => k.includes(":ids:")).length;
      expect(origin === undefined ? [seen, ids > 0] : [seen > 0, ids]).to.deep.equal(
        origin === undefined ? [0, true] : [true, 0],
      );
      await recorder.close();
      await again.close();
    });
});
