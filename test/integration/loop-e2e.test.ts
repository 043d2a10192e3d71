// The whole loop with real processes: `tensorclaw router` on a real Redis,
// three `tensorclaw miner`s (one over WebSocket) on a real OpenAI-format
// backend, a dry-run `tensorclaw validator`, and user traffic from the
// official openai client. The cases run in order on one network: each
// builds on the traffic and state the previous ones left.
import { expect } from "chai";
import { Redis } from "ioredis";
import OpenAI from "openai";
import {
  type LedgerTotals,
  type LoopMiner,
  type LoopNetwork,
  startLoopNetwork,
} from "../support/loop-network.js";
import { lastPrintedTable, type PrintedScore } from "../support/loop-score-table.js";
import type { RecordedRequest } from "../support/openai-backend.js";
import { promptTextOf } from "../support/openai-backend.js";
import { pollUntil } from "../support/poll.js";
import { userTotalTokens } from "../support/user-usage.js";

/** Marks user traffic at the backend; probes (indistinguishable to a miner) never carry it. */
const USER_MARK = "loop-e2e user request";
const TIER_C = 4;

describe("the whole loop (real processes)", function () {
  this.timeout(90_000);
  let net: LoopNetwork;
  let openai: OpenAI;
  let sent = 0;
  const miner = (name: string) => net.miners.find((m) => m.name === name) as LoopMiner;

  before(async () => {
    net = await startLoopNetwork({
      miners: [
        { name: "A", model: "m-a", transport: "grpc" },
        { name: "B", model: "m-b", transport: "grpc" },
        { name: "C", model: "m-c", transport: "ws" },
      ],
      tiers: { "m-c": TIER_C },
    });
    openai = new OpenAI({
      baseURL: `http://127.0.0.1:${net.httpPort}/v1`,
      apiKey: net.apiKey,
      maxRetries: 0,
      timeout: 15_000,
    });
    await pollUntil(async () => ((await net.activeHotkeys()).size === 3 ? true : undefined), {
      what: "three active miners",
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  });
  after(async () => {
    await net?.close();
  });

  /**
   * One user request for `model` (even ones stream, odd ones do not); checks
   * that the usage the user sees is what the backend produced for it.
   */
  async function ask(model: string): Promise<void> {
    const n = ++sent;
    const content = `${USER_MARK} ${n} [[backend tokens=${3 + (n % 7)}]]`;
    const total = await userTotalTokens(openai, model, content, n % 2 === 0);
    const produced = net.backend.chatRequests().find((r) => promptTextOf(r.body) === content);
    expect(total, `usage seen by the user for request ${n}`).to.equal(
      (produced?.promptTokens ?? Number.NaN) + (produced?.completionTokens ?? 0),
    );
  }

  /** Sends `counts[model]` requests per model, five at a time. */
  async function traffic(counts: Record<string, number>): Promise<void> {
    const queue = Object.entries(counts).flatMap(([model, k]) => Array.from({ length: k }, () => model));
    for (let i = 0; i < queue.length; i += 5) await Promise.all(queue.slice(i, i + 5).map((m) => ask(m)));
  }

  const isUser = (r: RecordedRequest) => promptTextOf(r.body).includes(USER_MARK);
  const modelOf = (r: RecordedRequest) => (r.body as { model?: string }).model;

  /** What the backend produced for user requests, per miner (each miner offers one model). */
  function backendTotals(): Map<string, LedgerTotals> {
    const out = new Map<string, LedgerTotals>();
    for (const m of net.miners) {
      const reqs = net.backend.chatRequests().filter((r) => isUser(r) && modelOf(r) === m.model);
      out.set(m.hotkey, {
        promptTokens: reqs.reduce((s, r) => s + r.promptTokens, 0),
        completionTokens: reqs.reduce((s, r) => s + r.completionTokens, 0),
        requests: reqs.length,
      });
    }
    return out;
  }

  /** Waits until the ledger holds exactly what the backend produced for users, per miner. */
  async function ledgerMatchesBackend(what: string): Promise<Map<string, LedgerTotals>> {
    const want = backendTotals();
    let seen: Map<string, LedgerTotals> = new Map();
    try {
      return await pollUntil(
        async () => {
          seen = await net.ledger();
          const same = [...want].every(([hk, w]) => JSON.stringify(seen.get(hk)) === JSON.stringify(w));
          return same && seen.size === want.size ? seen : undefined;
        },
        { what: what, timeoutMs: 15_000, intervalMs: 200 },
      );
    } catch (err) {
      expect(Object.fromEntries(seen), String(err)).to.deep.equal(Object.fromEntries(want));
      throw err;
    }
  }

  /** Waits for a printed score table satisfying `ok`. */
  function table(what: string, ok: (rows: PrintedScore[]) => boolean): Promise<PrintedScore[]> {
    return pollUntil(
      async () => {
        const rows = lastPrintedTable(net.validator.stdout);
        return rows !== undefined && ok(rows) ? rows : undefined;
      },
      { what: what, timeoutMs: 20_000, intervalMs: 200 },
    );
  }
  const row = (rows: PrintedScore[], m: LoopMiner) => rows.find((r) => r.hotkey === m.hotkey);

  it("credits each miner exactly the tokens the backend produced for users, and no probe tokens", async () => {
    // Every miner has been probed (through the backend) before any user traffic.
    await pollUntil(
      async () =>
        net.miners.every((m) => net.backend.chatRequests().some((r) => !isUser(r) && modelOf(r) === m.model))
          ? true
          : undefined,
      { what: "a probe of every miner at the backend", timeoutMs: 20_000, intervalMs: 100 },
    );
    await traffic({ "m-a": 12, "m-b": 6, "m-c": 2 });
    const ledger = await ledgerMatchesBackend("the ledger to match the backend's user tokens");
    expect(ledger.get(miner("A").hotkey)?.requests).to.equal(12);
    expect(ledger.get(miner("B").hotkey)?.requests).to.equal(6);
    expect(ledger.get(miner("C").hotkey)?.requests).to.equal(2);
    // The router keys each event by its origin and a per-miner seq: one bitmap per miner, no request-id sets.
    const admin = new Redis(net.redis.url);
    try {
      const seen = (await admin.keys("*:seen:*")).map((k) => /\{([^}]+)\}/.exec(k)?.[1]);
      expect(seen.sort()).to.deep.equal(["A", "B", "C"].map((n) => miner(n).hotkey).sort());
      expect(await admin.keys("*:ids:*")).to.deep.equal([]);
    } finally {
      admin.disconnect();
    }
    // Probes reached the backend and produced tokens, yet none are in the ledger (checked above).
    const probes = net.backend.chatRequests().filter((r) => !isUser(r));
    expect(probes.reduce((s, r) => s + r.completionTokens, 0)).to.be.greaterThan(0);
    // Each probe waited for a moment a user request would have gone to its miner (the router's metric).
    const metrics = await (await fetch(`http://127.0.0.1:${net.httpPort}/metrics`)).text();
    const held = [
      ...metrics.matchAll(/^tensorclaw_probe_arrival_hold_seconds_count\{outcome="(\w+)"\} (\d+)$/gm),
    ];
    expect(
      held.reduce((n, m) => n + Number(m[2]), 0),
      "probes held",
    ).to.be.at.least(probes.length);
  });

  it("has the validator weigh miners in the order of served tokens × tier", async () => {
    const ledger = await net.ledger();
    const tokens = (m: LoopMiner) => {
      const t = ledger.get(m.hotkey);
      return (t?.promptTokens ?? 0) + (t?.completionTokens ?? 0);
    };
    const points = (m: LoopMiner) => tokens(m) * (m.model === "m-c" ? TIER_C : 1);
    const rows = await table("a score table with every miner's ledger tokens", (rs) =>
      net.miners.every((m) => row(rs, m)?.tokens === tokens(m) && row(rs, m)?.probe === "pass"),
    );
    const byWeight = [...net.miners].sort(
      (x, y) => (row(rows, y)?.weight ?? 0) - (row(rows, x)?.weight ?? 0),
    );
    const byPoints = [...net.miners].sort((x, y) => points(y) - points(x));
    expect(byWeight.map((m) => m.name)).to.deep.equal(byPoints.map((m) => m.name));
    // The tier matters: plain token order would put B above C.
    expect(byPoints.map((m) => m.name)).to.deep.equal(["A", "C", "B"]);
    expect(row(rows, miner("A"))?.weight).to.equal(65535);
  });

  it("makes a killed miner a ghost (no traffic, unavailable, base 0) and serves it again once it is back and probed", async () => {
    const b = miner("B");
    await b.proc?.stop("SIGKILL");
    await pollUntil(async () => ((await net.activeHotkeys()).has(b.hotkey) ? undefined : true), {
      what: "B gone from the directory",
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    const before = net.backend.chatRequests().length;
    const err = await openai.chat.completions
      .create({ model: b.model, messages: [{ role: "user", content: `${USER_MARK} to a dead miner` }] })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).status).to.equal(503);
    expect(
      net.backend
        .chatRequests()
        .slice(before)
        .filter((r) => modelOf(r) === b.model),
    ).to.deep.equal([]);
    // Listed by no router: the validator's probe round counts that as a failed probe.
    const ghost = await table(
      "B an unavailable ghost in the score table",
      (rs) => row(rs, b)?.avail === "no" && row(rs, b)?.probe === "ghost",
    );
    const r = row(ghost, b) as PrintedScore;
    expect(r.latencyTier).to.equal(0);
    // Its served tokens still count for the 24 h window...
    expect(r.tokens).to.be.greaterThan(0);
    expect(r.business).to.be.greaterThan(0);
    // ...but its base is 0: the final score is the business part alone (both printed with two decimals),
    expect(r.final).to.be.closeTo(0.9 * r.business, 0.011);
    // and its weight is that final score max-normalised against the best miner's.
    const best = Math.max(...ghost.map((x) => x.final));
    expect(r.weight).to.be.closeTo((r.final / best) * 65535, (0.011 / best) * 65535 + 1);

    // Back with the same hotkey: active again, probed through the backend, serving users.
    const probesOfB = () =>
      net.backend.chatRequests().filter((r) => !isUser(r) && modelOf(r) === b.model).length;
    const probesBefore = probesOfB();
    net.startMiner(b);
    await pollUntil(async () => ((await net.activeHotkeys()).has(b.hotkey) ? true : undefined), {
      what: "B active again",
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    await pollUntil(async () => (probesOfB() > probesBefore ? true : undefined), {
      what: "a probe of the returned B at the backend",
      timeoutMs: 15_000,
      intervalMs: 100,
    });
    await table(
      "B available and passing its probe",
      (rs) => row(rs, b)?.avail === "yes" && row(rs, b)?.probe === "pass",
    );
    await traffic({ "m-b": 2 });
    await ledgerMatchesBackend("B's new traffic in the ledger");
  });

  it("makes a frozen miner a ghost (no traffic, base 0) and restores it after a passing probe", async () => {
    const c = miner("C");
    const pid = c.proc?.pid ?? -1;
    // Stopped, not dead: its tunnel stays open, so only a failed probe can reveal it.
    process.kill(pid, "SIGSTOP");
    try {
      const ghost = await table("C a ghost in the score table", (rs) => row(rs, c)?.probe === "ghost");
      const r = row(ghost, c) as PrintedScore;
      // Base 0: the final score is the business part alone (both printed with two decimals).
      expect(r.final).to.be.closeTo(0.9 * r.business, 0.011);
      expect(r.avail).to.equal("yes");
      // Out of the routing pool: an immediate 503, not a request stuck on the frozen miner.
      const err = await openai.chat.completions
        .create({ model: c.model, messages: [{ role: "user", content: `${USER_MARK} to a ghost` }] })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect((err as InstanceType<typeof OpenAI.APIError>).status).to.equal(503);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await table("C passing its probe again", (rs) => row(rs, c)?.probe === "pass");
    await pollUntil(async () => ((await net.activeHotkeys()).has(c.hotkey) ? true : undefined), {
      what: "C active again",
      timeoutMs: 10_000,
      intervalMs: 100,
    });
    await traffic({ "m-c": 1 });
    await ledgerMatchesBackend("C's traffic after it came back");
  });

  /** The router's `tensorclaw_usage_spool_depth` gauge, from /metrics. */
  async function spoolDepth(): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${net.httpPort}/metrics`)).text();
    const m = /^tensorclaw_usage_spool_depth (\d+)$/m.exec(text);
    return m === null ? Number.NaN : Number(m[1]);
  }

  it("loses no usage while Redis is down: the router spools it and writes it once Redis is back", async () => {
    // Keep what is already in Redis across the kill (the test server runs without persistence).
    const admin = new Redis(net.redis.url);
    await admin.save();
    admin.disconnect();
    await net.redis.kill();
    try {
      await traffic({ "m-a": 3, "m-b": 2, "m-c": 1 });
      // Still ready (it serves), and the operator sees the events held in the spool.
      expect((await fetch(`http://127.0.0.1:${net.httpPort}/readyz`)).status).to.equal(200);
      await pollUntil(async () => ((await spoolDepth()) > 0 ? true : undefined), {
        what: "usage held in the spool",
        timeoutMs: 10_000,
        intervalMs: 100,
      });
      const ready = (await (await fetch(`http://127.0.0.1:${net.httpPort}/readyz`)).json()) as {
        usage_spool_depth: number;
      };
      expect(ready.usage_spool_depth).to.be.greaterThan(0);
    } finally {
      await net.redis.restart();
    }
    await ledgerMatchesBackend("the spooled usage in the ledger");
    await pollUntil(async () => ((await spoolDepth()) === 0 ? true : undefined), {
      what: "the spool drained",
      timeoutMs: 10_000,
      intervalMs: 200,
    });
  });

  it("brings every miner back after a router restart", async () => {
    const old = net.router;
    await old.stop("SIGTERM");
    expect(await old.exited()).to.equal(0);
    await net.startRouter();
    await pollUntil(async () => ((await net.activeHotkeys()).size === 3 ? true : undefined), {
      what: "three active miners on the new router",
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    await traffic({ "m-a": 1, "m-b": 1, "m-c": 1 });
    await ledgerMatchesBackend("traffic after the restart in the ledger");
  });
});
