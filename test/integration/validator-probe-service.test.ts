import { credentials, Server, ServerCredentials, status } from "@grpc/grpc-js";
import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import {
  ProbeRequest,
  type ProbeResponse,
  ProbeServiceClient,
  ProbeServiceService,
} from "../../gen/tensorclaw/v1/probe.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { ProbeService, pickProbeSession, probeServiceImplementation } from "../../router/services/probe.js";
import type { SessionView } from "../../router/tunnel/types.js";
import { seededRandom } from "../support/api-random.js";
import { FakeClock } from "../support/fake-clock.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { chat, collect, connectMiner, type HubHarness, startHub } from "../support/tunnel-hub-harness.js";

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

  const service = (random = Math.random) =>
    new ProbeService({
      dispatcher: h.hub,
      now: () => performance.now(),
      random,
      logger: silentLogger(),
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

  it("times out a silent miner at the requested deadline and ghosts it", async () => {
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
    }).probe(req({ timeoutMs: 300 }));
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
    const res = await service().probe(req({ timeoutMs: 300 }));
    expect(res).to.include({ ok: false, ghost: true });
    expect(res.ttftMs).to.be.greaterThan(0);
  });

  it("does not probe (nor ghost) a miner saturated by real traffic", async () => {
    const m = await connectMiner(h, "grpc", minerKey, [{ id: "m1", maxConcurrency: 1, contextLength: 0 }], {
      plan: () => ({ chunks: ["x"], end: "hang" }),
    });
    const user = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5000 });
    await m.miner.until(() => m.miner.requests.length === 1);
    const err = await service()
      .probe(req())
      .then(
        () => expect.fail("expected no_capacity"),
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(TensorClawError);
    expect((err as TensorClawError).code).to.equal("no_capacity");
    expect(stateOf(minerKey.address)).to.deep.equal(["active"]);
    // The probe never reached the miner.
    expect(m.miner.requests).to.have.length(1);
    user.cancel("test over");
  });

  /** The service on a real grpc-js server, and a generated client whose calls resolve to status + answer. */
  async function overGrpc() {
    const server = new Server();
    server.addService(ProbeServiceService, probeServiceImplementation(service(), silentLogger()));
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
      expect((await call(req({ timeoutMs: 30_001 }))).code).to.equal(status.INVALID_ARGUMENT);
      const ok = await call(req({ model: "m1" }));
      expect(ok.code).to.equal(status.OK);
      expect(ok.res?.ok).to.equal(true);
    } finally {
      close();
    }
  });

  it("answers UNAVAILABLE over gRPC for a busy miner (not probed, not ghosted) and still probes a ghost", async () => {
    let userTraffic = true;
    const m = await connectMiner(h, "grpc", minerKey, [{ id: "m1", maxConcurrency: 1, contextLength: 0 }], {
      plan: () => (userTraffic ? { chunks: ["x"], end: "hang" } : { chunks: ["ok"], end: { usage: [4, 1] } }),
    });
    const { call, close } = await overGrpc();
    try {
      const user = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5000 });
      await m.miner.until(() => m.miner.requests.length === 1);
      expect((await call(req())).code).to.equal(status.UNAVAILABLE);
      expect(m.miner.requests).to.have.length(1);
      expect(stateOf(minerKey.address)).to.deep.equal(["active"]);
      user.cancel("test: user went away");
      await collect(user);
      userTraffic = false;
      // The miner's CANCELLED answer frees the slot on the router side.
      await waitForSessions(
        h.hub,
        (s) => s[0]?.inFlight === 0,
        "the cancelled request to free its slot",
        3000,
      );
      // A ghost takes no user traffic, but a probe still reaches it and brings it back.
      h.hub.setGhost(minerKey.address, true);
      const res = await call(req());
      expect(res.code).to.equal(status.OK);
      expect(res.res).to.include({ ok: true, ghost: false, sessionId: m.sessionId });
      expect(m.miner.requests).to.have.length(2);
      expect(stateOf(minerKey.address)).to.deep.equal(["active"]);
    } finally {
      close();
    }
  });

  it("picks the least-loaded live session of the hotkey", () => {
    const view = (sessionId: string, over: Partial<SessionView>): SessionView => ({
      sessionId,
      hotkey: "hk",
      transport: "grpc",
      state: "active",
      models: [{ id: "m1", maxConcurrency: 4, contextLength: 0, inFlight: 0 }],
      inFlight: 0,
      latencyMs: 10,
      connectedSinceMs: 0,
      softwareVersion: "",
      ...over,
    });
    const sessions = [
      view("a", { inFlight: 3 }),
      view("b", { inFlight: 1, latencyMs: 50 }),
      view("c", { inFlight: 1, latencyMs: 20 }),
      view("d", { inFlight: 0, state: "draining" }),
      view("e", { inFlight: 0, hotkey: "other" }),
      view("f", { inFlight: 0, models: [{ id: "m2", maxConcurrency: 1, contextLength: 0, inFlight: 0 }] }),
    ];
    expect(pickProbeSession(sessions, "hk", "")?.sessionId).to.equal("f");
    expect(pickProbeSession(sessions, "hk", "m1")?.sessionId).to.equal("c");
    expect(pickProbeSession(sessions, "hk", "m3")).to.equal(undefined);
    expect(pickProbeSession([view("g", { state: "ghost" })], "hk", "")?.sessionId).to.equal("g");
  });
});
