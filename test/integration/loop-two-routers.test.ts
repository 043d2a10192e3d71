// Two routers, one shared Redis Cluster, no single point of failure (real processes).
// Two miners (one over gRPC, one over WebSocket) dial both routers; a dry-run
// validator lists both; users of the official openai client send steady
// traffic through both. Router A is SIGKILLed mid-traffic: router B keeps
// serving, the miners' tunnels to B stay up, every answer a user received is
// in the ledger exactly once, and the validator keeps scoring every miner
// without a ghost or a skipped round.
//
// Each miner offers one model per router's users (`<miner>-a`, `<miner>-b`),
// so the public usage report (per miner, per model) tells A's traffic from
// B's: B's must match what B's users received token for token; A's too, plus
// at most the requests the kill cut (a router ends an answer only once its
// usage is durable, so the kill can lose none that a user received).
import { setTimeout as delay } from "node:timers/promises";
import { expect } from "chai";
import OpenAI from "openai";
import { MinerState } from "../../gen/tensorclaw/v1/directory.js";
import { type LoopMiner, type LoopNetwork, startLoopNetwork } from "../support/loop-network.js";
import { type PrintedScore, printedTables } from "../support/loop-score-table.js";
import { promptTextOf } from "../support/openai-backend.js";
import { pollUntil } from "../support/poll.js";
import type { TestRedis } from "../support/redis.js";
import { startRedisCluster } from "../support/redis-cluster.js";
import { userTotalTokens } from "../support/user-usage.js";

/** A real 3-master Redis Cluster as the one Redis the network shares (its masters are not killed here). */
async function redisCluster(): Promise<TestRedis> {
  const c = await startRedisCluster();
  const refuse = () => Promise.reject(new Error("kill a master through the cluster harness"));
  return {
    url: c.url,
    port: c.ports[0] ?? 0,
    owned: true,
    kill: refuse,
    restart: refuse,
    stop: () => c.stop(),
  };
}
/** What the routers share: switch to `startRedis` (test/support/redis.ts) for a single Redis. */
const startSharedRedis = redisCluster;

const A = 0;
const B = 1;
const USERS_PER_ROUTER = 2;

/** One user request and what its client saw. */
interface Sent {
  readonly router: number;
  readonly miner: LoopMiner;
  readonly model: string;
  readonly content: string;
  readonly startedAtMs: number;
  endedAtMs: number;
  /** prompt + completion tokens of the usage the client received; undefined when it failed. */
  tokens: number | undefined;
  error: unknown;
}

/** Ledger totals of one (miner, model). */
interface Counted {
  readonly tokens: number;
  readonly requests: number;
}

describe("two routers on one Redis Cluster, one killed mid-traffic (real processes)", function () {
  this.timeout(120_000);
  let net: LoopNetwork;
  const sent: Sent[] = [];
  /** What the kill left behind, for the cases after it. */
  let killAtMs = 0;
  let stdoutAtKill = 0;
  let stderrAtKill = 0;
  let tunnelsOnB = new Map<string, string>();
  const samplesOfB: { atMs: number; active: Map<string, string> | Error }[] = [];

  before(async () => {
    net = await startLoopNetwork({
      routers: 2,
      startRedis: startSharedRedis,
      miners: [
        { name: "x", model: "x-a", models: ["x-a", "x-b"], transport: "grpc" },
        { name: "y", model: "y-a", models: ["y-a", "y-b"], transport: "ws" },
      ],
      backendTokens: 6,
    });
    // Both miners active on both routers, and probed (passing) by the validator.
    for (const r of [A, B]) {
      await pollUntil(async () => ((await activeOn(r)).size === net.miners.length ? true : undefined), {
        what: `both miners active on router ${r}`,
        timeoutMs: 30_000,
        intervalMs: 100,
      });
    }
    await pollUntil(
      () => {
        const last = printedTables(net.validator.stdout).at(-1);
        return last !== undefined && net.miners.every((m) => row(last, m)?.probe === "pass");
      },
      { what: "a score table with both miners passing", timeoutMs: 30_000, intervalMs: 200 },
    );
  });
  after(async () => {
    await net?.close();
  });

  const row = (rows: PrintedScore[], m: LoopMiner) => rows.find((r) => r.hotkey === m.hotkey);

  async function activeOn(router: number): Promise<Map<string, string>> {
    const list = await net.routerClient(router).listMiners();
    return new Map(
      list.sessions
        .filter((s) => s.state === MinerState.MINER_STATE_ACTIVE)
        .map((s) => [s.hotkey, s.sessionId]),
    );
  }

  function client(router: number): OpenAI {
    const r = net.routers[router];
    return new OpenAI({
      baseURL: `http://127.0.0.1:${r?.httpPort}/v1`,
      apiKey: net.apiKey,
      maxRetries: 0,
      timeout: 15_000,
    });
  }

  /** One request (streamed every other time); records what the client saw. */
  async function ask(openai: OpenAI, router: number, n: number): Promise<Sent> {
    // Miners in turn, and streamed or not in turn for each (n / miners).
    const miner = net.miners[n % net.miners.length] as LoopMiner;
    const streamed = Math.floor(n / net.miners.length) % 2 === 0;
    const model = miner.models[router] as string;
    const content = `two-router user ${router}/${n} [[backend tokens=${4 + (n % 5)} delay=10]]`;
    const s: Sent = {
      router,
      miner,
      model,
      content,
      startedAtMs: Date.now(),
      endedAtMs: 0,
      tokens: undefined,
      error: undefined,
    };
    try {
      s.tokens = await userTotalTokens(openai, model, content, streamed);
    } catch (err) {
      s.error = err;
    }
    s.endedAtMs = Date.now();
    return s;
  }

  /** Each router's users take the next request number from here. */
  const next = [0, 0];
  const take = (router: number) => {
    const n = next[router] ?? 0;
    next[router] = n + 1;
    return n;
  };
  /** A user sending one request after another to `router` until `stop`. */
  async function user(router: number, stop: AbortSignal): Promise<void> {
    const openai = client(router);
    while (!stop.aborted) {
      const s = await ask(openai, router, take(router));
      sent.push(s);
      // A refused connection answers at once: pace the retries of a user whose router is gone.
      if (s.error !== undefined) await delay(50);
    }
  }

  /** The ledger per "<hotkey> <model>", from the UsageReport of router `via`. */
  async function counted(via: number): Promise<Map<string, Counted>> {
    const usage = await net.routerClient(via).getUsage(0);
    const out = new Map<string, Counted>();
    for (const u of usage.miners) {
      for (const mu of u.models) {
        const tokens = Number(mu.promptTokens + mu.completionTokens);
        out.set(`${u.hotkey} ${mu.model}`, { tokens, requests: Number(mu.requests) });
      }
    }
    return out;
  }

  /** Waits until the ledger holds `want` for each of its keys (other keys are not looked at). */
  async function ledgerHolds(want: Map<string, Counted>, what: string): Promise<Map<string, Counted>> {
    let seen = new Map<string, Counted>();
    try {
      return await pollUntil(
        async () => {
          seen = await counted(B);
          const same = [...want].every(([k, w]) => JSON.stringify(seen.get(k)) === JSON.stringify(w));
          return same ? seen : undefined;
        },
        { what, timeoutMs: 15_000, intervalMs: 200 },
      );
    } catch (err) {
      const got = Object.fromEntries([...want.keys()].map((k) => [k, seen.get(k)]));
      expect(got, String(err)).to.deep.equal(Object.fromEntries(want));
      throw err;
    }
  }

  const sum = (xs: readonly Sent[]) => xs.reduce((t, s) => t + (s.tokens ?? 0), 0);

  it("serves users through both routers, and through B alone once A is SIGKILLed mid-traffic", async () => {
    const stop = new AbortController();
    const users = [A, B].flatMap((r) => Array.from({ length: USERS_PER_ROUTER }, () => user(r, stop.signal)));
    // B's directory, sampled all along (checked in a later case).
    tunnelsOnB = await activeOn(B);
    const watching = (async () => {
      while (!stop.signal.aborted) {
        const active = await activeOn(B).catch((err: unknown) =>
          err instanceof Error ? err : new Error(String(err)),
        );
        samplesOfB.push({ atMs: Date.now(), active });
        await delay(150);
      }
    })();
    const done = (router: number, after = 0) =>
      sent.filter((s) => s.router === router && s.tokens !== undefined && s.startedAtMs >= after).length;
    try {
      await pollUntil(() => done(A) >= 12 && done(B) >= 12, {
        what: "steady traffic through both routers",
        timeoutMs: 30_000,
        intervalMs: 50,
      });
      // Mid-traffic: requests are in flight on A (each takes tens of ms at the backend).
      stdoutAtKill = net.validator.stdout.length;
      stderrAtKill = net.validator.stderr.length;
      killAtMs = Date.now();
      await net.killRouter(A);
      // B keeps serving, and the validator scores twice more after the kill.
      await pollUntil(
        () => done(B, killAtMs) >= 12 && printedTables(net.validator.stdout.slice(stdoutAtKill)).length >= 2,
        { what: "traffic through B and two score tables after the kill", timeoutMs: 30_000, intervalMs: 100 },
      );
    } finally {
      stop.abort();
      await Promise.all(users);
      await watching;
    }

    // Every request sent to B succeeded, before and after the kill.
    const toB = sent.filter((s) => s.router === B);
    expect(toB.filter((s) => s.error !== undefined).map((s) => String(s.error))).to.deep.equal([]);
    expect(toB.filter((s) => s.startedAtMs > killAtMs).length).to.be.at.least(12);
    // A's users failed cleanly, and only from the kill on: a connection error
    // (or a cut stream), never a hang to the client's timeout.
    const failedA = sent.filter((s) => s.router === A && s.error !== undefined);
    expect(failedA.length, "requests to A after the kill").to.be.greaterThan(0);
    for (const s of failedA) {
      expect(s.endedAtMs, `${s.content} failed before the kill: ${String(s.error)}`).to.be.at.least(killAtMs);
      expect(s.error).to.not.be.instanceOf(OpenAI.APIConnectionTimeoutError);
      expect(s.endedAtMs - Math.max(s.startedAtMs, killAtMs), `${s.content} took to fail`).to.be.below(5_000);
    }
    expect(
      sent.filter((s) => s.router === A && s.startedAtMs > killAtMs && s.error === undefined),
    ).to.deep.equal([]);
  });

  it("keeps every miner's tunnel to B up through A's death: same session, active, in every sample", () => {
    expect(tunnelsOnB.size).to.equal(net.miners.length);
    expect(samplesOfB.filter((s) => s.atMs > killAtMs).length).to.be.at.least(3);
    for (const s of samplesOfB) {
      expect(s.active instanceof Error ? s.active.message : Object.fromEntries(s.active)).to.deep.equal(
        Object.fromEntries(tunnelsOnB),
      );
    }
  });

  it("counts every answer a user received exactly once, on either router, and a request cut by the kill at most once", async () => {
    // B's models: exactly what B's users received.
    const want = new Map<string, Counted>();
    for (const m of net.miners) {
      const mine = sent.filter((s) => s.router === B && s.miner === m);
      want.set(`${m.hotkey} ${m.models[B]}`, { tokens: sum(mine), requests: mine.length });
    }
    const ledger = await ledgerHolds(want, "B's traffic in the ledger, exactly");
    // A's models: every answer A's users received is counted (A ends an answer
    // only once its usage is in the ledger), and no request more than once.
    // Those cut by the kill may or may not be: at most what the backend produced.
    const produced = (s: Sent) => {
      const r = net.backend.chatRequests().find((b) => promptTextOf(b.body) === s.content);
      return r === undefined ? 0 : r.promptTokens + r.completionTokens;
    };
    for (const m of net.miners) {
      const toA = sent.filter((s) => s.router === A && s.miner === m);
      const received = toA.filter((s) => s.tokens !== undefined);
      const cut = toA.filter((s) => s.tokens === undefined);
      const got = ledger.get(`${m.hotkey} ${m.models[A]}`) ?? { tokens: 0, requests: 0 };
      const what = `miner ${m.name}'s A traffic: ${received.length} answers received, ${cut.length} failed`;
      expect(received.length, what).to.be.greaterThan(0);
      expect(got.requests, what).to.be.within(received.length, received.length + cut.length);
      expect(got.tokens, what).to.be.within(
        sum(received),
        sum(received) + cut.reduce((t, s) => t + produced(s), 0),
      );
    }
  });

  it("keeps the validator scoring every miner after the kill: no ghost, no skipped round, no lost probe", () => {
    const after = net.validator.stdout.slice(stdoutAtKill);
    const logged = net.validator.stderr.slice(stderrAtKill);
    // The lines themselves on failure: the validator's log names each router's error.
    const skips = `${after}\n${logged}`.split("\n").filter((l) => /skipped|discarded/.test(l));
    expect(skips, "rounds skipped or discarded after the kill").to.deep.equal([]);
    // A probe sent to A after it died was asked of B instead, not dropped.
    expect(logged).to.not.match(/router failed a probe/);
    const tables = printedTables(after);
    expect(tables.length).to.be.at.least(2);
    for (const t of tables) {
      for (const m of net.miners) {
        const r = row(t, m);
        expect(r, `miner ${m.name} in every table after the kill`).to.not.equal(undefined);
        const { avail, probe, final, business, weight } = r as PrintedScore;
        expect({ avail, probe }, `miner ${m.name}`).to.deep.equal({ avail: "yes", probe: "pass" });
        // final = 0.1 base + 0.9 business (both printed with two decimals): base > 0.
        expect(final - 0.9 * business, `miner ${m.name}'s base part`).to.be.greaterThan(0.011);
        expect(weight, `miner ${m.name}'s weight`).to.be.greaterThan(0);
      }
    }
  });

  it("brings A back on its data dir: the miners dial it again, B's tunnels stay, new traffic counts once", async () => {
    const before = await counted(B);
    await net.startRouter(A);
    await pollUntil(async () => ((await activeOn(A)).size === net.miners.length ? true : undefined), {
      what: "both miners active on the restarted A",
      // A miner's redial waits at most its backoff cap (30 s); a few seconds here.
      timeoutMs: 45_000,
      intervalMs: 100,
    });
    expect(Object.fromEntries(await activeOn(B))).to.deep.equal(Object.fromEntries(tunnelsOnB));
    const openai = client(A);
    const again: Sent[] = [];
    for (let i = 0; i < 2 * net.miners.length; i++) again.push(await ask(openai, A, take(A)));
    expect(again.filter((s) => s.error !== undefined).map((s) => String(s.error))).to.deep.equal([]);
    // Each of A's models grows by exactly the new answers; nothing else moves.
    const want = new Map<string, Counted>();
    for (const [k, c] of before) want.set(k, c);
    for (const m of net.miners) {
      const key = `${m.hotkey} ${m.models[A]}`;
      const was = before.get(key) ?? { tokens: 0, requests: 0 };
      const mine = again.filter((s) => s.miner === m);
      want.set(key, { tokens: was.tokens + sum(mine), requests: was.requests + mine.length });
    }
    await ledgerHolds(want, "the restarted A's traffic in the ledger, once");
  });
});
