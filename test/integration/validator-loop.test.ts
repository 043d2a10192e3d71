import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { type Clock, systemClock } from "../../common/clock.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { ProbeServiceService } from "../../gen/tensorclaw/v1/probe.js";
import type { MinerUsage } from "../../gen/tensorclaw/v1/usage.js";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { RouterClient } from "../../validator/router-client.js";
import { FileStateStore } from "../../validator/state-store-file.js";
import { Validator, type ValidatorDeps } from "../../validator/validator.js";
import { seededRandom } from "../support/api-random.js";
import { FakeClock } from "../support/fake-clock.js";
import { throwawayHotkey } from "../support/keys.js";
import { pollUntil } from "../support/poll.js";
import { freePort } from "../support/redis.js";
import {
  ghostProbe,
  okProbe,
  type RouterStandIn,
  session,
  startRouterStandIn,
} from "../support/validator-router.js";

/** Usage of one model: `tokens` prompt tokens, of which `paid` were paid for (default: all). */
const usage = (hotkey: string, tokens: bigint, tierMultiplier = 1, paid = tokens): MinerUsage => ({
  hotkey,
  models: [
    {
      model: "m",
      promptTokens: tokens,
      completionTokens: 0n,
      paidPromptTokens: paid,
      paidCompletionTokens: 0n,
      served: 0n,
      failedBeforeOutput: 0n,
      failedAfterOutput: 0n,
      deadlineCut: 0n,
      requests: 1n,
      tierMultiplier,
      businessPoints: (Number(paid) / 10_000) * tierMultiplier,
    },
  ],
  promptTokens: tokens,
  completionTokens: 0n,
  paidPromptTokens: paid,
  paidCompletionTokens: 0n,
  requests: 1n,
  businessPoints: (Number(paid) / 10_000) * tierMultiplier,
});

describe("validator loop (real gRPC router stand-in, file state)", () => {
  let key: Hotkey;
  let dir: string;
  let router: RouterStandIn;
  const clients: RouterClient[] = [];

  before(async () => {
    key = await throwawayHotkey();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-vloop-"));
    router = await startRouterStandIn({
      sessions: [session("5FAST"), session("5GHOST"), session("5SLOW")],
      usage: [usage("5FAST", 100_000n), usage("5SLOW", 100_000n, 2), usage("5GONE", 20_000n)],
      probe: (req) => (req.hotkey === "5GHOST" ? ghostProbe() : okProbe(req.hotkey === "5SLOW" ? 1500 : 40)),
    });
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await router.close();
    await rm(dir, { recursive: true, force: true });
  });

  const make = async (
    urls: string[],
    printed: string[] = [],
    clock: Clock = systemClock,
    more: Partial<ValidatorDeps["settings"]> & Pick<ValidatorDeps, "references"> = {},
  ) => {
    const client = new RouterClient(urls, { signer: key, logger: silentLogger(), callTimeoutMs: 2000 });
    clients.push(client);
    const { references, ...settings } = more;
    return new Validator({
      ...(references === undefined ? {} : { references }),
      router: client,
      store: await FileStateStore.open(join(dir, "state.json")),
      chain: undefined,
      selfHotkey: key.address,
      settings: {
        netuid: 92,
        dryRun: true,
        probeConcurrency: 4,
        probeTimeoutMs: 1000,
        probeIntervalMs: 50,
        weightsIntervalMs: 60_000,
        latencyTiers: DEFAULT_LATENCY_TIERS,
        ...settings,
      },
      clock,
      randomBytes: (n) => randomBytes(n),
      random: seededRandom(11),
      logger: silentLogger(),
      print: (t) => printed.push(t),
    });
  };

  it("scores from stored probes and 24 h usage and prints the table", async () => {
    const printed: string[] = [];
    const v = await make([router.url], printed);
    await v.probeRound();
    const r = await v.scorePass({ submit: true, print: true });
    if (r === undefined) throw new Error("pass skipped");
    const by = new Map(r.scores.map((s) => [s.hotkey, s]));
    // FAST: base 100, business 10 of best 20 → 50 → final 10 + 45.
    expect(by.get("5FAST")?.final).to.be.closeTo(55, 1e-9);
    // SLOW: 1.5 s tier (40) → base 30+40+8+10 = 88; business 100 → final 8.8 + 90.
    expect(by.get("5SLOW")?.final).to.be.closeTo(98.8, 1e-9);
    // GHOST: base 0, no traffic.
    expect(by.get("5GHOST")).to.include({ ghost: true, final: 0 });
    // GONE: traffic but not connected, never probed: base 0 + business 10 → 9.
    expect(by.get("5GONE")?.final).to.be.closeTo(9, 1e-9);
    const table = printed.join("");
    expect(table).to.match(
      /^uid\s+hotkey\s+avail\s+probe\s+latency tier\s+uptime %\s+tokens 24h\s+business\s+final\s+weight\s+audit failed$/m,
    );
    expect(table).to.match(/-\s+5SLOW\s+yes\s+pass\s+40\s+100\.0\s+100000\s+100\.00\s+98\.80\s+65535/);
    expect(table).to.match(/-\s+5GHOST\s+yes\s+ghost\s+0\s+0\.0\s+0\s+0\.00\s+0\.00\s+0\s+-$/m);
    expect(table).to.contain("no metagraph");
  });

  it("scores paid tokens only, unless the router says it counts free traffic", async () => {
    // SELF fed itself 10 M free tokens and paid for 10,000; FAST has 100,000 paid.
    router.script.sessions = [session("5FAST"), session("5SELF")];
    router.script.usage = [usage("5FAST", 100_000n), usage("5SELF", 10_000_000n, 1, 10_000n)];
    const printed: string[] = [];
    const v = await make([router.url], printed);
    await v.probeRound();
    const paid = await v.scorePass({ submit: false, print: true });
    const by = new Map(paid?.scores.map((s) => [s.hotkey, s]));
    expect(by.get("5FAST")).to.deep.include({ business: 100, tokens: 100_000 });
    expect(by.get("5SELF")).to.deep.include({ business: 10, tokens: 10_000 });
    expect(printed.join("")).to.not.contain("counts free traffic");
    // A dev router: every token earns, and the table says so.
    router.script.freeTrafficCounted = true;
    const dev = await v.scorePass({ submit: false, print: true });
    const devBy = new Map(dev?.scores.map((s) => [s.hotkey, s]));
    expect(devBy.get("5SELF")).to.deep.include({ business: 100, tokens: 10_000_000 });
    expect(devBy.get("5FAST")?.business).to.be.closeTo(1, 1e-9);
    expect(printed.join("")).to.contain("the router counts free traffic");
  });

  it("audits each miner of a model with a reference on a prompt of its own; without one, on a shared prompt", async () => {
    router.script.sessions = [session("5A"), session("5B"), session("5C")];
    router.script.probe = () => okProbe(40);
    const audited = async (references?: ValidatorDeps["references"]) => {
      const v = await make([router.url], [], systemClock, {
        verifyShare: 1,
        ...(references ? { references } : {}),
      });
      router.calls.length = 0;
      await v.probeRound();
      const bodies = router.calls
        .filter((c) => c.method === ProbeServiceService.probe.path)
        .map((c) => (c.request as { requestJson: string }).requestJson);
      expect(bodies).to.have.length(3);
      return new Set(bodies).size;
    };
    const judge = {
      judge: async () => ({ outcome: "passed" as const, detail: "" }),
      answer: async () => "",
    };
    expect(await audited(new Map([["m", judge]])), "three miners, three prompts").to.equal(3);
    expect(await audited(), "judged by agreement: one prompt for all").to.equal(1);
  });

  it("keeps uptime history across a restart", async () => {
    const v1 = await make([router.url]);
    await v1.probeRound();
    router.script.probe = (req) => (req.hotkey === "5FAST" ? ghostProbe() : okProbe(40));
    await v1.probeRound();
    const v2 = await make([router.url]);
    router.script.probe = () => okProbe(40);
    await v2.probeRound();
    const r = await v2.scorePass({ submit: false, print: false });
    const fast = r?.scores.find((s) => s.hotkey === "5FAST");
    expect(fast?.uptime).to.be.closeTo((2 / 3) * 100, 1e-9);
    expect(fast?.ghost).to.equal(false);
  });

  it("makes a miner no router lists a ghost (base 0), unless it is on another replica, and restores it", async () => {
    const other = await startRouterStandIn({ sessions: [], probe: () => okProbe(40) });
    try {
      const v = await make([router.url, other.url]);
      await v.probeRound();
      const score = async (hotkey: string) => {
        const r = await v.scorePass({ submit: false, print: false });
        return r?.scores.find((s) => s.hotkey === hotkey);
      };
      expect(await score("5FAST")).to.include({ ghost: false, base: 100 });
      // FAST moves its tunnel to the other replica: still connected, still scored.
      router.script.sessions = [session("5GHOST"), session("5SLOW")];
      other.script.sessions = [session("5FAST")];
      await v.probeRound();
      expect(await score("5FAST")).to.include({ ghost: false, base: 100 });
      // Killed: no replica lists it. The round records a failure: a ghost with base 0,
      // left with its business share only (10 of best 20 points → 50 → 45).
      other.script.sessions = [];
      const round = await v.probeRound();
      expect(round?.disconnected).to.deep.equal(["5FAST"]);
      const dead = await score("5FAST");
      expect(dead).to.include({ ghost: true, base: 0, availability: 0, probe: 0 });
      expect(dead?.final).to.be.closeTo(45, 1e-9);
      expect(dead?.uptime).to.be.closeTo((2 / 3) * 100, 1e-9);
      // Back, and its probe passes: restored.
      other.script.sessions = [session("5FAST")];
      await v.probeRound();
      const back = await score("5FAST");
      expect(back).to.include({ ghost: false, availability: 100, probe: 100 });
      expect(back?.uptime).to.equal(75);
    } finally {
      await other.close();
    }
  });

  it("stops recording a miner once every kept probe failed, so its history can age out", async () => {
    const v = await make([router.url]);
    await v.probeRound();
    router.script.sessions = [session("5GHOST"), session("5SLOW")];
    await v.probeRound();
    const store = await FileStateStore.open(join(dir, "state.json"));
    expect((await store.probeHistory()).get("5FAST")?.map((r) => r.ok)).to.deep.equal([true, false]);
    // 5GHOST never passed: when it goes too, it gets no entry (nothing left to lose).
    router.script.sessions = [session("5SLOW")];
    const round = await v.probeRound();
    expect(round?.disconnected).to.deep.equal(["5FAST"]);
  });

  it("skips the round and punishes nobody when no router can be reached", async () => {
    const v = await make([router.url]);
    await v.probeRound();
    const before = await (await FileStateStore.open(join(dir, "state.json"))).probeHistory();
    const printed: string[] = [];
    const dead = await make([`grpc://127.0.0.1:${await freePort()}`], printed);
    expect(await dead.probeRound()).to.equal(undefined);
    expect(await dead.scorePass({ submit: true, print: true })).to.equal(undefined);
    expect(printed.join("")).to.contain("router unreachable, not punishing miners");
    const after = await (await FileStateStore.open(join(dir, "state.json"))).probeHistory();
    expect(after).to.deep.equal(before);
  });

  it("discards a round in which the router failed every probe", async () => {
    router.script.probe = () => ({ code: 14, details: "hub down" });
    const v = await make([router.url]);
    expect(await v.probeRound()).to.equal(undefined);
    expect((await (await FileStateStore.open(join(dir, "state.json"))).probeHistory()).size).to.equal(0);
  });

  it("probes each miner at its own random times until aborted, printing the table in a dry run", async () => {
    const printed: string[] = [];
    const clock = new FakeClock(Date.now());
    const v = await make([router.url], printed, clock);
    const probed = () =>
      router.calls
        .filter((c) => c.method.endsWith("/Probe"))
        .map((c) => (c.request as { hotkey: string }).hotkey);
    const stop = new AbortController();
    const done = v.run(stop.signal);
    // The listing and the first scoring pass run at once; nobody is probed before their own time comes.
    await clock.untilPending();
    expect(probed()).to.deep.equal([]);
    await pollUntil(() => router.calls.some((c) => c.method.endsWith("/GetUsage")), {
      timeoutMs: 5000,
      what: "the first scoring pass to read usage",
    });
    // 40 mean intervals of 50 ms, in 10 ms steps.
    const order: string[][] = [];
    for (let t = 0; t < 2000; t += 10) {
      const before = probed().length;
      await clock.advance(10);
      await clock.untilPending();
      await pollUntil(() => v.probesInFlight === 0, { timeoutMs: 5000, what: "probes to finish" });
      order.push(probed().slice(before));
    }
    stop.abort();
    await done;
    expect(clock.pending).to.equal(0);
    const counts = ["5FAST", "5GHOST", "5SLOW"].map((hk) => probed().filter((x) => x === hk).length);
    // About 40 each (a Poisson count: 40 ± 3 standard deviations)...
    for (const n of counts) expect(n).to.be.within(21, 59);
    // ...at independent times: not a round that probes all three in the same step.
    const steps = order.filter((o) => o.length > 0);
    expect(steps.filter((o) => o.length === 3).length).to.be.below(steps.length / 4);
    const h = await (await FileStateStore.open(join(dir, "state.json"))).probeHistory();
    expect(h.get("5FAST")).to.have.length(counts[0] as number);
    expect(h.get("5GHOST")?.every((r) => !r.ok)).to.equal(true);
    expect(printed.join("")).to.match(/^uid\s+hotkey/m);
  });

  it("keeps probing at each miner's times while the router holds the listing and the usage report", async () => {
    const clock = new FakeClock(Date.now());
    const v = await make([router.url], [], clock);
    const count = (suffix: string) => router.calls.filter((c) => c.method.endsWith(suffix)).length;
    const stop = new AbortController();
    const done = v.run(stop.signal);
    await clock.untilPending();
    await pollUntil(() => count("/GetUsage") === 1, { timeoutMs: 5000, what: "the first scoring pass" });
    // From here the router answers no listing and no usage report until released.
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    router.script.stall = () => held;
    const listingsBefore = count("/ListMiners");
    const probesBefore = count("/Probe");
    // 10 mean probe intervals; each step must find the loop waiting on its next probe time again.
    for (let t = 0; t < 500; t += 10) {
      await clock.advance(10);
      await Promise.race([
        clock.untilPending(),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error("the loop stopped waiting on probe times")), 1000),
        ),
      ]);
      await pollUntil(() => v.probesInFlight === 0, { timeoutMs: 5000, what: "probes to finish" });
    }
    // About 30 probes (3 miners, 10 intervals each), sent while one listing waited.
    expect(count("/Probe") - probesBefore).to.be.within(12, 55);
    expect(count("/ListMiners") - listingsBefore, "one listing at a time").to.equal(1);
    release();
    router.script.stall = undefined;
    // The held listing ends, and the next one starts a probe interval later.
    for (let i = 0; i < 200 && count("/ListMiners") === listingsBefore + 1; i++) {
      await clock.advance(10);
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(count("/ListMiners"), "the listing after the held one").to.be.above(listingsBefore + 1);
    stop.abort();
    await done;
    expect(clock.pending).to.equal(0);
  });
});
