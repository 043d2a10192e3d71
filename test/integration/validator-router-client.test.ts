import { once } from "node:events";
import { createServer, type Socket } from "node:net";
import { status } from "@grpc/grpc-js";
import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { MinerState } from "../../gen/tensorclaw/v1/directory.js";
import { type ModelVerdict, Verdict } from "../../gen/tensorclaw/v1/probe.js";
import { RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { disconnectedMiners, probeTargets, runProbeRound } from "../../validator/probe-round.js";
import {
  MAX_VERDICTS_PER_CALL,
  PROBE_REPORT_SLACK_MS,
  RouterClient,
  RouterUnreachableError,
} from "../../validator/router-client.js";
import { throwawayHotkey } from "../support/keys.js";
import { freePort } from "../support/redis.js";
import {
  ghostProbe,
  okProbe,
  type RouterStandIn,
  session,
  startRouterStandIn,
} from "../support/validator-router.js";

/** How long the stand-in takes to answer a probe where a test needs probes to overlap. */
const SLOW_PROBE_MS = 20;

/** A liveness probe asking the router to report within `timeoutMs`. */
const liveness = (timeoutMs: number) => ({
  body: { messages: [{ role: "user", content: "Say hello." }] },
  cutAfterTokens: 5,
  timeoutMs,
});

/** A round's way to probe: a liveness probe through `c`. */
const livenessVia = (c: RouterClient, timeoutMs: number) => (hotkey: string) =>
  c.probe(hotkey, liveness(timeoutMs));

describe("validator router client (real gRPC servers)", () => {
  let key: Hotkey;
  const servers: RouterStandIn[] = [];
  const clients: RouterClient[] = [];

  before(async () => {
    key = await throwawayHotkey();
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    for (const s of servers.splice(0)) await s.close();
  });

  const server = async (...args: Parameters<typeof startRouterStandIn>) => {
    const s = await startRouterStandIn(...args);
    servers.push(s);
    return s;
  };
  const client = (urls: string[], signer = key) => {
    const c = new RouterClient(urls, { signer, logger: silentLogger(), callTimeoutMs: 2000 });
    clients.push(c);
    return c;
  };

  it("signs every call so the router verifies it over the exact bytes it received", async () => {
    const s = await server({ sessions: [session("5A")] });
    const c = client([s.url]);
    const list = await c.listMiners();
    expect(list.sessions.map((x) => x.hotkey)).to.deep.equal(["5A"]);
    await c.getUsage(3600, ["5A", "5B"]);
    const body = { messages: [{ role: "user", content: "hi" }], max_tokens: 7 };
    const p = await c.probe("5A", {
      model: "m",
      body,
      cutAfterTokens: 5,
      timeoutMs: 1234,
      kind: "embedding",
    });
    expect(p.kind).to.equal("probed");
    expect(s.refused).to.deep.equal([]);
    expect(s.calls.map((x) => [x.method, x.hotkey])).to.deep.equal([
      ["/tensorclaw.v1.MinerDirectoryService/ListMiners", key.address],
      ["/tensorclaw.v1.UsageReportService/GetUsage", key.address],
      ["/tensorclaw.v1.ProbeService/Probe", key.address],
    ]);
    expect(s.calls[1]?.request).to.deep.equal({ windowSeconds: 3600, hotkeys: ["5A", "5B"] });
    expect(s.calls[2]?.request).to.deep.equal({
      hotkey: "5A",
      model: "m",
      timeoutMs: 1234,
      requestJson: JSON.stringify(body),
      cutAfterTokens: 5,
      kind: RequestKind.REQUEST_KIND_EMBEDDING,
    });
  });

  it("fails over to the next replica, and sticks with the one that answered", async () => {
    const down = `grpc://127.0.0.1:${await freePort()}`;
    const up = await server({ sessions: [session("5B")] });
    const c = client([down, up.url]);
    expect((await c.listMiners()).sessions).to.have.length(1);
    expect(c.activeRouter).to.equal(up.url);
    // Probes go to the replica whose directory listed the miner.
    expect((await c.probe("5B", liveness(500))).kind).to.equal("probed");
    expect(up.calls.map((x) => x.method)).to.include("/tensorclaw.v1.ProbeService/Probe");
  });

  it("lists miners on every replica and probes each where its tunnel is", async () => {
    const r1 = await server({
      sessions: [session("5A"), session("5C", { state: MinerState.MINER_STATE_DRAINING })],
    });
    const r2 = await server({ sessions: [session("5B"), session("5C")] });
    const down = `grpc://127.0.0.1:${await freePort()}`;
    const c = client([down, r1.url, r2.url]);
    const list = await c.listMiners();
    expect(list.sessions.map((x) => x.hotkey)).to.deep.equal(["5A", "5B", "5C", "5C"]);
    await runProbeRound(c, {
      concurrency: 4,
      probe: livenessVia(c, 1000),
      clock: Date.now,
      logger: silentLogger(),
    });
    const probed = (s: RouterStandIn) =>
      s.calls.filter((x) => x.method.endsWith("/Probe")).map((x) => (x.request as { hotkey: string }).hotkey);
    expect(probed(r1)).to.deep.equal(["5A"]);
    // 5C is draining on r1 but active on r2: probed where it can answer.
    expect(probed(r2).sort()).to.deep.equal(["5B", "5C"]);
  });

  it("asks the next replica that listed a miner when the first no longer holds its tunnel", async () => {
    const r1 = await server({
      sessions: [session("5A")],
      probe: () => ({ code: status.NOT_FOUND, details: "tunnel closed" }),
    });
    const r2 = await server({ sessions: [session("5A")] });
    const c = client([r1.url, r2.url]);
    await c.listMiners();
    expect(await c.probe("5A", liveness(500))).to.deep.include({ kind: "probed" });
    r2.script.probe = () => ({ code: status.NOT_FOUND, details: "tunnel closed" });
    expect(await c.probe("5A", liveness(500))).to.deep.include({ kind: "absent" });
    const probes = (s: RouterStandIn) => s.calls.filter((x) => x.method.endsWith("/Probe")).length;
    expect([probes(r1), probes(r2)]).to.deep.equal([2, 2]);
  });

  it("asks the next replica that listed a miner when the first has died since the listing", async () => {
    const r1 = await server({ sessions: [session("5A")] });
    const r2 = await server({ sessions: [session("5A")] });
    const c = client([r1.url, r2.url]);
    await c.listMiners();
    await r1.close();
    // The dead replica never ran the probe: the miner is probed where its other tunnel is.
    expect(await c.probe("5A", liveness(500))).to.deep.include({ kind: "probed" });
    const probes = (s: RouterStandIn) => s.calls.filter((x) => x.method.endsWith("/Probe")).length;
    expect([probes(r1), probes(r2)]).to.deep.equal([0, 1]);
    // The survivor no longer holds it, but the dead one may: the router's fault, not a ghost.
    r2.script.probe = () => ({ code: status.NOT_FOUND, details: "tunnel closed" });
    expect(await c.probe("5A", liveness(500))).to.deep.include({ kind: "router_error" });
  });

  it("reports the youngest replica's start, and no known miner is disconnected while it is in its grace", async () => {
    const now = BigInt(Date.now());
    const old = await server({ sessions: [session("5A")], servingSinceMs: now - 3_600_000n });
    const young = await server({ sessions: [], servingSinceMs: now - 2_000n });
    const list = await client([old.url, young.url]).listMiners();
    expect(list.servingSinceMs).to.equal(now - 2_000n);
    expect(disconnectedMiners(list, ["5A", "5B"], 60_000)).to.deep.equal([]);
    expect(disconnectedMiners(list, ["5A", "5B"], 1_000)).to.deep.equal(["5B"]);
  });

  it("names the replicas that did not answer the listing, and no known miner is disconnected then", async () => {
    const up = await server({ sessions: [session("5A")] });
    const down = `grpc://127.0.0.1:${await freePort()}`;
    const partial = client([up.url, down]);
    const list = await partial.listMiners();
    expect(list.unanswered).to.have.length(1);
    expect(list.unanswered?.[0]).to.contain(down);
    const opts = (c: RouterClient) => ({
      concurrency: 2,
      probe: livenessVia(c, 500),
      clock: () => 7,
      logger: silentLogger(),
      known: ["5A", "5KILLED"],
    });
    // 5KILLED may have its tunnel on the replica that did not answer: nothing is recorded for it.
    const unsure = await runProbeRound(partial, opts(partial));
    expect(unsure.disconnected).to.deep.equal([]);
    expect(unsure.entries.map((e) => e.hotkey)).to.deep.equal(["5A"]);
    // With every replica answering and none listing it, it is not connected anywhere: a failed probe.
    const whole = client([up.url]);
    const sure = await runProbeRound(whole, opts(whole));
    expect(sure.disconnected).to.deep.equal(["5KILLED"]);
    expect(sure.entries.find((e) => e.hotkey === "5KILLED")?.record).to.deep.equal({
      atMs: 7,
      ok: false,
      latencyMs: 0,
      ttftMs: 0,
    });
  });

  it("fails over when a replica refuses the validator, and says why when all do", async () => {
    const refusing = await server({ allowed: new Set(["5SOMEONE_ELSE"]) });
    const ok = await server({});
    const c = client([refusing.url, ok.url]);
    await c.getUsage();
    expect(refusing.refused.map((r) => r.code)).to.deep.equal([status.PERMISSION_DENIED]);
    expect(ok.calls).to.have.length(1);

    const only = client([refusing.url]);
    const err = await only.listMiners().then(
      () => expect.fail("expected RouterUnreachableError"),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(RouterUnreachableError);
    expect((err as RouterUnreachableError).attempts[0]).to.match(/PERMISSION_DENIED/);
  });

  it("tries every replica once per call, even when a concurrent call moved the preferred one meanwhile", async () => {
    // A replica that accepts connections and never answers: each call to it waits for its deadline.
    const held: Socket[] = [];
    const silent = createServer((sock) => held.push(sock));
    silent.listen(0, "127.0.0.1");
    await once(silent, "listening");
    try {
      const up = await server({ sessions: [session("5B")] });
      // Its id pinned (?id=), so each call goes to it on its own, not through one shared id lookup.
      const silentUrl = `grpc://127.0.0.1:${(silent.address() as { port: number }).port}?id=silent`;
      const c = new RouterClient([silentUrl, up.url], {
        signer: key,
        logger: silentLogger(),
        callTimeoutMs: 400,
      });
      clients.push(c);
      // The listing moves the preferred replica to the answering one when the silent one's call
      // ends (400 ms); the usage call, started meanwhile on the silent one, ends 100 ms later and
      // must then go on to the other replica, not back to the silent one.
      const listing = c.listMiners();
      await new Promise((r) => setTimeout(r, 100));
      const usage = c.getUsage();
      await listing;
      expect(c.activeRouter).to.equal(up.url);
      await usage;
      expect(up.calls.map((x) => x.method)).to.include("/tensorclaw.v1.UsageReportService/GetUsage");
    } finally {
      for (const sock of held) sock.destroy();
      silent.close();
    }
  });

  it("throws RouterUnreachableError when no replica answers", async () => {
    const c = client([`grpc://127.0.0.1:${await freePort()}`, `grpc://127.0.0.1:${await freePort()}`]);
    const err = await c.getUsage().then(
      () => expect.fail("expected RouterUnreachableError"),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(RouterUnreachableError);
    expect((err as RouterUnreachableError).attempts).to.have.length(2);
  });

  it("reports NOT_FOUND as absent and router failures as the router's, never as a ghost", async () => {
    const s = await server({
      probe: (req) =>
        req.hotkey === "gone"
          ? { code: status.NOT_FOUND, details: "no tunnel" }
          : req.hotkey === "broken"
            ? { code: status.INTERNAL, details: "boom" }
            : "never",
    });
    const c = client([s.url]);
    expect(await c.probe("gone", liveness(500))).to.deep.include({ kind: "absent" });
    expect(await c.probe("broken", liveness(500))).to.deep.include({ kind: "router_error" });
    const silent = await c.probe("silent", liveness(200));
    expect(silent.kind).to.equal("router_error");
    expect(silent.kind === "router_error" && silent.detail).to.match(/DEADLINE_EXCEEDED/);
  });

  it("sends verdicts to every replica, in calls of at most 4096, and names a replica that failed", async () => {
    const r1 = await server();
    const r2 = await server();
    const down = `grpc://127.0.0.1:${await freePort()}`;
    const c = client([r1.url, down, r2.url]);
    const verdicts: ModelVerdict[] = Array.from({ length: MAX_VERDICTS_PER_CALL + 10 }, (_, i) => ({
      hotkey: `5H${i}`,
      model: "m",
      verdict: i % 2 === 0 ? Verdict.VERDICT_FAILED : Verdict.VERDICT_VERIFIED,
      detail: "",
    }));
    const report = await c.reportVerdicts(verdicts);
    expect(report.routers.map((r) => r.url)).to.deep.equal([r1.url, r2.url]);
    // The stand-in answers the number of FAILED verdicts it holds.
    expect(report.routers.map((r) => r.excluded)).to.deep.equal([2053, 2053]);
    expect(report.unanswered).to.have.length(1);
    expect(report.unanswered[0]).to.contain(down);
    for (const r of [r1, r2]) {
      const calls = r.calls.filter((x) => x.method === "/tensorclaw.v1.ProbeService/ReportVerdicts");
      expect(calls.map((x) => (x.request as { verdicts: unknown[] }).verdicts.length)).to.deep.equal([
        MAX_VERDICTS_PER_CALL,
        10,
      ]);
      expect(calls.every((x) => x.hotkey === key.address)).to.equal(true);
    }
    const none = client([down]);
    const err = await none.reportVerdicts(verdicts.slice(0, 1)).then(
      () => expect.fail("expected RouterUnreachableError"),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(RouterUnreachableError);
  });

  describe("probe rounds", () => {
    it("probes active and ghost miners once each, skips banned, draining and model-less ones", () => {
      const s = [
        session("a"),
        session("a", { sessionId: "a2" }),
        session("g", { state: MinerState.MINER_STATE_GHOST }),
        session("b", { state: MinerState.MINER_STATE_BANNED }),
        session("d", { state: MinerState.MINER_STATE_DRAINING }),
        session("e", { models: [] }),
      ];
      expect(probeTargets(s)).to.deep.equal(["a", "g"]);
    });

    it("records passes, ghosts and vanished miners as failed, bounds parallelism, and records nothing for router faults", async () => {
      const hotkeys = Array.from({ length: 20 }, (_, i) => `m${String(i).padStart(2, "0")}`);
      const s = await server({
        sessions: hotkeys.map((h) => session(h)),
        probe: async (req) => {
          // A slow miner (the scenario, not a wait): probes overlap, so the round's bound shows.
          await new Promise((r) => setTimeout(r, SLOW_PROBE_MS));
          if (req.hotkey === "m00") return ghostProbe();
          if (req.hotkey === "m01") return { code: status.UNAVAILABLE, details: "router busy" };
          if (req.hotkey === "m02") return { code: status.NOT_FOUND, details: "left" };
          return okProbe(42);
        },
      });
      const c = client([s.url]);
      let t = 1_000;
      const round = await runProbeRound(c, {
        concurrency: 4,
        probe: livenessVia(c, 2000),
        clock: () => t++,
        logger: silentLogger(),
      });
      expect(s.maxInFlight).to.equal(4);
      expect(round.entries).to.have.length(19);
      expect(round.entries.find((e) => e.hotkey === "m00")?.record.ok).to.equal(false);
      expect(round.entries.filter((e) => e.record.ok)).to.have.length(17);
      expect(round.entries.find((e) => e.hotkey === "m05")?.record).to.include({ ok: true, latencyMs: 42 });
      // Listed, then gone when probed: not connected at probe time, so a failed probe.
      expect(round.absent).to.deep.equal(["m02"]);
      expect(round.entries.find((e) => e.hotkey === "m02")?.record).to.deep.include({
        ok: false,
        latencyMs: 0,
      });
      expect(round.entries.some((e) => e.hotkey === "m01")).to.equal(false);
      expect(round.routerErrors.map((r) => r.hotkey)).to.deep.equal(["m01"]);
      const timeouts = s.calls.filter((x) => x.method.endsWith("/Probe")).map((x) => x.request);
      expect(timeouts.every((r) => (r as { timeoutMs: number }).timeoutMs === 2000)).to.equal(true);
    });

    it("ends within the probe deadline plus slack when miners never answer", async () => {
      const hotkeys = Array.from({ length: 40 }, (_, i) => `h${i}`);
      const s = await server({
        sessions: hotkeys.map((h) => session(h)),
        probe: (req) => (Number(req.hotkey.slice(1)) % 2 === 0 ? okProbe(5) : "never"),
      });
      const c = client([s.url]);
      const started = Date.now();
      const round = await runProbeRound(c, {
        concurrency: 64,
        probe: livenessVia(c, 300),
        clock: Date.now,
        logger: silentLogger(),
      });
      const took = Date.now() - started;
      expect(round.entries).to.have.length(20);
      expect(round.routerErrors).to.have.length(20);
      // 300 ms deadline + 250 ms report slack; a serial or unbounded-wait round would take far longer.
      expect(took).to.be.lessThan(300 + PROBE_REPORT_SLACK_MS + 1500);
      expect(took).to.be.at.least(300);
    });
  });
});
