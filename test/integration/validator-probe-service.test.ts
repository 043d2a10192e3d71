import { credentials, Server, ServerCredentials, status } from "@grpc/grpc-js";
import { expect } from "chai";
import type { TensorClawError } from "../../common/errors.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import {
  ProbeRequest,
  type ProbeResponse,
  ProbeServiceClient,
  ProbeServiceService,
} from "../../gen/tensorclaw/v1/probe.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import {
  drawProbeTarget,
  ProbeService,
  probeServiceImplementation,
  probeTargets,
} from "../../router/services/probe.js";
import type { SessionView } from "../../router/tunnel/types.js";
import { seededRandom } from "../support/api-random.js";
import { FakeClock } from "../support/fake-clock.js";
import { throwawayHotkey } from "../support/keys.js";
import { chat, connectMiner, type HubHarness, startHub } from "../support/tunnel-hub-harness.js";

describe("router probe service (real tunnel hub, real miners over gRPC)", () => {
  let minerKey: Hotkey;
  let otherKey: Hotkey;
  let h: HubHarness;

  before(async () => {
    minerKey = await throwawayHotkey();
    otherKey = await throwawayHotkey();
  });
  beforeEach(async () => {
    h = await startHub();
  });
  afterEach(async () => h.close());

  const service = (random = Math.random, deadlineMs?: number) =>
    new ProbeService({
      dispatcher: h.hub,
      now: () => performance.now(),
      random,
      logger: silentLogger(),
      ...(deadlineMs === undefined ? {} : { deadlineMs }),
    });
  const req = (over: Partial<ProbeRequest> = {}) =>
    ProbeRequest.fromPartial({ hotkey: minerKey.address, ...over });
  const stateOf = (hotkey: string) =>
    h.hub
      .sessions()
      .filter((s) => s.hotkey === hotkey)
      .map((s) => s.state);

  it("sends a fresh ≤5-token chat through the tunnel and reports a pass", async () => {
    const m = await connectMiner(h, "grpc", minerKey);
    const res = await service().probe(req());
    expect(res).to.include({ ok: true, ghost: false, error: "", model: "m1", sessionId: m.sessionId });
    expect(res.completionTokens).to.equal(3);
    expect(res.ttftMs).to.be.greaterThan(0);
    expect(res.latencyMs).to.be.at.least(res.ttftMs);
    expect(Number(res.finishedAtMs)).to.be.closeTo(Date.now(), 5000);
    const sent = m.miner.requests[0];
    expect(sent?.model).to.equal("m1");
    expect(sent?.chat?.maxTokens).to.equal(5);
    expect(sent?.chat?.messages).to.have.length(1);
    expect(sent?.chat?.messages[0]?.role).to.equal("user");
    expect(sent?.deadlineMs).to.equal(8000);
    // Nothing marks it as a probe on the wire.
    expect(sent?.chat?.user).to.equal("");
    expect(sent?.chat?.extraJson).to.equal("");
  });

  it("uses a different prompt every time", async () => {
    const m = await connectMiner(h, "grpc", minerKey);
    // Seeded, so the draw is the same every run: six probes, six different texts.
    const s = service(seededRandom(92));
    for (let i = 0; i < 6; i++) expect(await s.probe(req())).to.include({ ok: true });
    const prompts = new Set(m.miner.requests.map((r) => r.chat?.messages[0]?.content));
    expect(m.miner.requests).to.have.length(6);
    expect(prompts.size).to.equal(6);
  });

  it("marks a miner that errors a ghost, takes it out of the pool, and a later pass restores it", async () => {
    let fail = true;
    const m = await connectMiner(h, "grpc", minerKey, undefined, {
      plan: () =>
        fail
          ? { chunks: [], end: { error: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR, message: "oom" } }
          : { chunks: ["hi"], end: { usage: [4, 1] } },
    });
    const s = service();
    const bad = await s.probe(req());
    expect(bad).to.include({ ok: false, ghost: true });
    expect(bad.error).to.match(/BACKEND_ERROR/);
    expect(stateOf(minerKey.address)).to.deep.equal(["ghost"]);
    // User traffic cannot reach a ghost.
    expect(() => h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 1000 })).to.throw(
      /not taking requests/,
    );
    fail = false;
    const good = await s.probe(req());
    expect(good).to.include({ ok: true, ghost: false, completionTokens: 1 });
    expect(stateOf(minerKey.address)).to.deep.equal(["active"]);
  });

  it("ignores the deadline a validator asks for: a healthy miner passes even when asked for 1 ms", async () => {
    const m = await connectMiner(h, "grpc", minerKey);
    const res = await service().probe(req({ timeoutMs: 1 }));
    expect(res).to.include({ ok: true, ghost: false });
    expect(m.miner.requests[0]?.deadlineMs).to.equal(8000);
    expect(stateOf(minerKey.address)).to.deep.equal(["active"]);
  });

  it("times out a silent miner at the router's deadline, whatever the validator asks, and ghosts it", async () => {
    // Hub and probe on one fake clock (miners sign their hello with the real time).
    const clock = new FakeClock(Date.now());
    await h.close();
    h = await startHub({ clock });
    const m = await connectMiner(h, "grpc", minerKey, undefined, {
      plan: () => ({ chunks: [], end: "hang" }),
    });
    const probing = new ProbeService({
      dispatcher: h.hub,
      now: () => clock.now(),
      clock,
      random: Math.random,
      logger: silentLogger(),
      deadlineMs: 300,
    }).probe(req({ timeoutMs: 60_000 }));
    await m.miner.until(() => m.miner.requests.length === 1);
    await clock.advance(299);
    expect(stateOf(minerKey.address), "judged before the deadline").to.deep.equal(["active"]);
    await clock.advance(1);
    const res = await probing;
    expect(res).to.include({ ok: false, ghost: true, ttftMs: 0, latencyMs: 300 });
    expect(Number(res.finishedAtMs)).to.equal(clock.now());
    expect(stateOf(minerKey.address)).to.deep.equal(["ghost"]);
    // The probe's own guard (due 50 ms after the deadline) was cleared with the call.
    expect(clock.scheduled().filter((t) => t.inMs <= 50)).to.deep.equal([]);
  });

  it("fails a miner that sends tokens but never finishes cleanly", async () => {
    await connectMiner(h, "grpc", minerKey, undefined, { plan: () => ({ chunks: ["a"], end: "hang" }) });
    const res = await service(Math.random, 300).probe(req());
    expect(res).to.include({ ok: false, ghost: true });
    expect(res.ttftMs).to.be.greaterThan(0);
  });

  it("probes a miner saturated by real traffic through the tunnel's probe slot", async () => {
    let users = 0;
    const m = await connectMiner(h, "grpc", minerKey, [{ id: "m1", maxConcurrency: 1, contextLength: 0 }], {
      plan: () =>
        users++ === 0 ? { chunks: ["x"], end: "hang" } : { chunks: ["ok"], end: { usage: [4, 1] } },
    });
    const user = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5000 });
    await m.miner.until(() => m.miner.requests.length === 1);
    // Users cannot take the probe slot ...
    expect(() => h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 1000 })).to.throw(/at capacity/);
    // ... and a probe gets it while users hold every user slot.
    const res = await service().probe(req());
    expect(res).to.include({ ok: true, ghost: false });
    expect(m.miner.requests).to.have.length(2);
    user.cancel("test over");
  });

  it("counts a hotkey whose probe slots stay taken as failed after three probes in a row", async () => {
    await connectMiner(h, "grpc", minerKey, undefined, { plan: () => ({ chunks: [], end: "hang" }) });
    const s = service(Math.random, 2000);
    // The first probe holds the only probe slot while it waits for the hanging miner.
    const holding = s.probe(req());
    // (probe() dispatches before its first await: the slot is taken now.)
    const busy = async () =>
      s.probe(req()).then(
        () => expect.fail("expected no_capacity"),
        (e: unknown) => e as TensorClawError,
      );
    expect((await busy()).code).to.equal("no_capacity");
    expect((await busy()).code).to.equal("no_capacity");
    expect(stateOf(minerKey.address)).to.deep.equal(["active"]);
    const third = await s.probe(req());
    expect(third).to.include({ ok: false, ghost: true });
    expect(third.error).to.match(/not probeable for 3 probes in a row/);
    expect(stateOf(minerKey.address)).to.deep.equal(["ghost"]);
    expect((await holding).ok).to.equal(false);
  });

  /** The service on a real grpc-js server, and a generated client whose calls resolve to status + answer. */
  async function overGrpc(deadlineMs?: number) {
    const server = new Server();
    server.addService(
      ProbeServiceService,
      probeServiceImplementation(service(Math.random, deadlineMs), silentLogger()),
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const client = new ProbeServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    const call = (r: ProbeRequest) =>
      new Promise<{ code: status; res?: ProbeResponse }>((resolve) =>
        client.probe(r, (e, res) => resolve(e ? { code: e.code } : { code: status.OK, res })),
      );
    const close = () => {
      client.close();
      server.forceShutdown();
    };
    return { call, close };
  }

  it("answers NOT_FOUND and INVALID_ARGUMENT over gRPC", async () => {
    await connectMiner(h, "grpc", minerKey);
    const { call, close } = await overGrpc();
    try {
      expect((await call(req({ hotkey: otherKey.address }))).code).to.equal(status.NOT_FOUND);
      expect((await call(req({ model: "absent-model" }))).code).to.equal(status.NOT_FOUND);
      expect((await call(req({ hotkey: "nope" }))).code).to.equal(status.INVALID_ARGUMENT);
      const ok = await call(req({ model: "m1" }));
      expect(ok.code).to.equal(status.OK);
      expect(ok.res?.ok).to.equal(true);
    } finally {
      close();
    }
  });

  it("answers UNAVAILABLE over gRPC while the probe slot is taken, and ghosts a miner that hangs", async () => {
    const m = await connectMiner(h, "grpc", minerKey, [{ id: "m1", maxConcurrency: 1, contextLength: 0 }], {
      plan: () => ({ chunks: [], end: "hang" }),
    });
    const { call, close } = await overGrpc(500);
    try {
      const first = call(req());
      await m.miner.until(() => m.miner.requests.length === 1);
      expect((await call(req())).code).to.equal(status.UNAVAILABLE);
      expect(m.miner.requests).to.have.length(1);
      expect(stateOf(minerKey.address)).to.deep.equal(["active"]);
      // The hanging probe fails at the deadline: a ghost takes no user traffic ...
      expect((await first).res).to.include({ ok: false, ghost: true });
      expect(stateOf(minerKey.address)).to.deep.equal(["ghost"]);
      // Its tunnel keeps the slot until the miner answers the cancel (or the grace ends), so
      // the next probe finds it taken: busy, not a second verdict.
      expect((await call(req())).code).to.equal(status.UNAVAILABLE);
    } finally {
      close();
    }
  });

  it("spreads probes over every model and every tunnel of a hotkey, never a draining or other one", () => {
    const view = (sessionId: string, models: string[], over: Partial<SessionView> = {}): SessionView => ({
      sessionId,
      hotkey: "hk",
      transport: "grpc",
      state: "active",
      models: models.map((id) => ({ id, maxConcurrency: 4, contextLength: 0, inFlight: 0 })),
      inFlight: 0,
      latencyMs: 10,
      connectedSinceMs: 0,
      softwareVersion: "",
      ...over,
    });
    const sessions = [
      view("a", ["m1"], { inFlight: 3 }),
      view("b", ["m1", "m2"], { state: "ghost" }),
      view("c", ["m3"]),
      view("d", ["m1"], { state: "draining" }),
      view("e", ["m1"], { hotkey: "other" }),
    ];
    const targets = probeTargets(sessions, "hk", "");
    expect(targets.map((t) => `${t.session.sessionId}/${t.model}`)).to.deep.equal([
      "a/m1",
      "b/m1",
      "b/m2",
      "c/m3",
    ]);
    expect(probeTargets(sessions, "hk", "m1").map((t) => t.session.sessionId)).to.deep.equal(["a", "b"]);
    const random = seededRandom(7);
    const seen = new Map<string, number>();
    for (let i = 0; i < 600; i++) {
      const t = drawProbeTarget(targets, random);
      const k = `${t?.session.sessionId}/${t?.model}`;
      seen.set(k, (seen.get(k) ?? 0) + 1);
    }
    // Models are drawn uniformly (1/3 each), then tunnels: m1 splits between a and b.
    expect([...seen.keys()].sort()).to.deep.equal(["a/m1", "b/m1", "b/m2", "c/m3"]);
    expect(seen.get("c/m3")).to.be.within(150, 250);
    expect(seen.get("a/m1")).to.be.within(60, 140);
    expect(drawProbeTarget([], random)).to.equal(undefined);
  });
});
