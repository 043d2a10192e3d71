import { credentials, Server, ServerCredentials, status } from "@grpc/grpc-js";
import { expect } from "chai";
import { Registry } from "prom-client";
import { TensorClawError } from "../../common/errors.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { DEFAULT_ENCODING, type TokenCount } from "../../common/tokens/encodings.js";
import { signedCall } from "../../common/validator-call/client.js";
import { allowList, ValidatorAuth } from "../../common/validator-call/server.js";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import {
  ProbeRequest,
  type ProbeResponse,
  ProbeServiceClient,
  ProbeServiceService,
} from "../../gen/tensorclaw/v1/probe.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { CapacityQueue, type SlotRequest } from "../../router/api/capacity-queue.js";
import { hashUser } from "../../router/api/openai-request.js";
import { API_DEFAULTS } from "../../router/api/server.js";
import { ApiMetrics } from "../../router/metrics.js";
import { RoutingBook } from "../../router/routing/book.js";
import {
  addProbeService,
  drawProbeTarget,
  ProbeService,
  type ProbeServiceDeps,
  probeServiceImplementation,
  probeTargets,
} from "../../router/services/probe.js";
import { probeAccount } from "../../router/services/probe-body.js";
import type { ProbeQueue } from "../../router/services/probe-queue.js";
import { USER_DISCONNECT_REASON } from "../../router/services/probe-run.js";
import type { InferenceCall, SessionView } from "../../router/tunnel/types.js";
import { seededRandom } from "../support/api-random.js";
import { FakeClock } from "../support/fake-clock.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { PROBE_TEST_SALT, probeBody, probeDeps } from "../support/probe-deps.js";
import { chat, connectMiner, type HubHarness, startHub } from "../support/tunnel-hub-harness.js";

const WORDS = [" one", " two", " three", " four", " five", " six", " seven", " eight", " nine", " ten"];

describe("router probe service (real tunnel hub, real miners over gRPC)", () => {
  let minerKey: Hotkey;
  let otherKey: Hotkey;
  let validatorKey: Hotkey;
  let h: HubHarness;
  let count: TokenCount;

  before(async () => {
    [minerKey, otherKey, validatorKey] = await Promise.all([
      throwawayHotkey(),
      throwawayHotkey(),
      throwawayHotkey(),
    ]);
  });
  beforeEach(async () => {
    h = await startHub();
    const d = await probeDeps(h.hub);
    count = d.encodings.get(DEFAULT_ENCODING) as TokenCount;
  });
  afterEach(async () => h.close());

  const service = async (over: Partial<ProbeServiceDeps> = {}) =>
    new ProbeService(await probeDeps(h.hub, over));
  const req = (over: Partial<ProbeRequest> = {}) =>
    ProbeRequest.fromPartial({
      hotkey: minerKey.address,
      requestJson: probeBody(),
      cutAfterTokens: 5,
      ...over,
    });
  const stateOf = (hotkey: string) =>
    h.hub
      .sessions()
      .filter((s) => s.hotkey === hotkey)
      .map((s) => s.state);
  /** The shortest prefix of `chunks` holding at least `n` tokens, joined. */
  const firstTokens = (chunks: readonly string[], n: number) => {
    for (let i = 1; i <= chunks.length; i++) {
      const text = chunks.slice(0, i).join("");
      if (count(text) >= n) return text;
    }
    return chunks.join("");
  };

  it("sends the validator's chat read as a user's body would be, and reports a pass", async () => {
    const m = await connectMiner(h, "grpc", minerKey);
    // A frozen wall clock: the deadline the frame carries is exactly the user rule's.
    const s = await service({ clock: new FakeClock() });
    const body = probeBody({ temperature: 0.7, user: "alice", model: "ignored", top_k: 40 });
    const res = await s.probe(req({ requestJson: body }), validatorKey.address);
    expect(res).to.include({
      ok: true,
      ghost: false,
      error: "",
      model: "m1",
      sessionId: m.sessionId,
      cut: false,
    });
    expect(res.content).to.equal("abc");
    expect(res.completionTokens).to.equal(count("abc"));
    expect(res.ttftMs).to.be.greaterThan(0);
    expect(res.latencyMs).to.be.at.least(res.ttftMs);
    const sent = m.miner.requests[0];
    expect(sent?.model).to.equal("m1");
    expect(sent?.deadlineMs).to.equal(API_DEFAULTS.requestTimeoutMs);
    expect(sent?.chat).to.deep.include({
      temperature: 0.7,
      // No limit the probe did not set: the router injects none, for probes as for users.
      maxTokens: undefined,
      stream: true,
      user: hashUser("alice", probeAccount(validatorKey.address), PROBE_TEST_SALT),
      extraJson: JSON.stringify({ top_k: 40 }),
    });
    expect(sent?.chat?.messages.map((x) => [x.role, x.content])).to.deep.equal([["user", "Say hello."]]);
  });

  it("refuses request_json a user would get 400 for, naming the field, before anything is sent", async () => {
    const m = await connectMiner(h, "grpc", minerKey);
    const s = await service();
    const refused = async (json: string) =>
      s.probe(req({ requestJson: json }), validatorKey.address).then(
        () => expect.fail("expected invalid_request"),
        (e: unknown) => e as TensorClawError,
      );
    const cases: [string, string][] = [
      ["", "request_json"],
      ["{not json", "request_json"],
      ["[1,2]", "request_json"],
      [JSON.stringify({ messages: [] }), "request_json.messages"],
      [
        JSON.stringify({ messages: [{ role: "user", content: "x" }], temperature: 3 }),
        "request_json.temperature",
      ],
      [JSON.stringify({ messages: [{ role: "user", content: "x" }], n: 9 }), "request_json.n"],
    ];
    for (const [json, param] of cases) {
      const e = await refused(json);
      expect(e).to.be.instanceOf(TensorClawError);
      expect(e.code, json).to.equal("invalid_request");
      expect(e.param, json).to.equal(param);
      expect(e.message, json).to.match(/^request_json/);
    }
    expect(m.miner.requests).to.have.length(0);
  });

  it("cuts after N tokens with the Cancel a user disconnect sends, and passes", async () => {
    const m = await connectMiner(h, "grpc", minerKey, undefined, {
      plan: () => ({ chunks: WORDS, end: "hang" }),
    });
    const res = await (await service()).probe(req({ cutAfterTokens: 5 }), validatorKey.address);
    expect(res).to.include({ ok: true, ghost: false, cut: true, error: "" });
    expect(res.finishReason).to.equal(FinishReason.FINISH_REASON_UNSPECIFIED);
    expect(res.content).to.equal(firstTokens(WORDS, 5));
    expect(res.completionTokens).to.equal(count(res.content));
    await m.miner.until(() => m.miner.cancels.length === 1);
    expect(m.miner.cancels[0]?.reason).to.equal(USER_DISCONNECT_REASON);
    expect(m.miner.cancels[0]?.requestId).to.equal(m.miner.requests[0]?.requestId);
  });

  it("relays a whole audit (no cut) with its finish reason and logprobs", async () => {
    const m = await connectMiner(h, "grpc", minerKey, undefined, {
      plan: () => ({
        chunks: WORDS,
        end: { usage: [9, 10] },
        finishReason: FinishReason.FINISH_REASON_STOP,
        logprobs: true,
      }),
    });
    const res = await (await service()).probe(req({ cutAfterTokens: 0 }), validatorKey.address);
    expect(res).to.include({ ok: true, cut: false, content: WORDS.join("") });
    expect(res.finishReason).to.equal(FinishReason.FINISH_REASON_STOP);
    expect(res.completionTokens).to.equal(count(WORDS.join("")));
    expect(res.logprobs.map((l) => l.token)).to.deep.equal(WORDS);
    expect(res.logprobs[2]).to.deep.equal({
      token: " three",
      logprob: -0.3,
      topLogprobs: [{ token: "alt", logprob: -5 }],
    });
    expect(m.miner.cancels).to.deep.equal([]);
  });

  it("fails an audit that never finishes cleanly (cut by the request's deadline)", async () => {
    await connectMiner(h, "grpc", minerKey, undefined, { plan: () => ({ chunks: WORDS, end: "hang" }) });
    const s = await service({ chat: { ...API_DEFAULTS, userSalt: "s", requestTimeoutMs: 300 } });
    const res = await s.probe(req({ cutAfterTokens: 0 }), validatorKey.address);
    expect(res).to.include({ ok: false, ghost: true, cut: false });
    expect(res.error).to.match(/TIMEOUT/);
    expect(res.content).to.equal(WORDS.join(""));
    expect(stateOf(minerKey.address)).to.deep.equal(["ghost"]);
  });

  it("passes an answer shorter than the liveness goal when it finishes cleanly", async () => {
    await connectMiner(h, "grpc", minerKey, undefined, {
      plan: () => ({ chunks: ["Hi", "!"], end: { usage: [3, 2] } }),
    });
    const res = await (await service()).probe(req({ cutAfterTokens: 5 }), validatorKey.address);
    expect(res).to.include({ ok: true, cut: false, content: "Hi!" });
  });

  it("at the liveness deadline cancels as a user disconnect and ghosts the miner; a later pass restores it", async () => {
    let silent = true;
    const m = await connectMiner(h, "grpc", minerKey, undefined, {
      plan: () => (silent ? { chunks: [], end: "hang" } : { chunks: WORDS, end: { usage: [1, 10] } }),
    });
    const clock = new FakeClock();
    const s = await service({ clock, now: () => clock.now() });
    const probing = s.probe(req({ cutAfterTokens: 5 }), validatorKey.address);
    await m.miner.until(() => m.miner.requests.length === 1);
    // The production liveness deadline, 8 s, on the probe's own timer.
    await clock.advance(7999);
    expect(stateOf(minerKey.address), "judged before the deadline").to.deep.equal(["active"]);
    await clock.advance(1);
    const res = await probing;
    expect(res).to.include({ ok: false, ghost: true, latencyMs: 8000, ttftMs: 0, content: "" });
    expect(res.error).to.equal("no token within the liveness deadline");
    expect(Number(res.finishedAtMs)).to.equal(clock.now());
    await m.miner.until(() => m.miner.cancels.length === 1);
    expect(m.miner.cancels[0]?.reason).to.equal(USER_DISCONNECT_REASON);
    expect(stateOf(minerKey.address)).to.deep.equal(["ghost"]);
    // User traffic cannot reach a ghost; probes can, and a pass brings it back.
    expect(() => h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 1000 })).to.throw(
      /not taking requests/,
    );
    silent = false;
    expect(await s.probe(req(), validatorKey.address)).to.include({ ok: true, cut: true });
    expect(stateOf(minerKey.address)).to.deep.equal(["active"]);
  });

  it("marks a miner that errors before its tokens a ghost", async () => {
    await connectMiner(h, "grpc", minerKey, undefined, {
      plan: () => ({
        chunks: [],
        end: { error: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR, message: "oom" },
      }),
    });
    const bad = await (await service()).probe(req(), validatorKey.address);
    expect(bad).to.include({ ok: false, ghost: true });
    expect(bad.error).to.match(/BACKEND_ERROR: oom/);
  });

  it("ignores the deadline a validator asks for", async () => {
    const m = await connectMiner(h, "grpc", minerKey);
    const res = await (await service({ clock: new FakeClock() })).probe(
      req({ timeoutMs: 1 }),
      validatorKey.address,
    );
    expect(res).to.include({ ok: true, ghost: false });
    expect(m.miner.requests[0]?.deadlineMs).to.equal(API_DEFAULTS.requestTimeoutMs);
  });

  it("takes an ordinary slot while the model has one free, counted like a user request", async () => {
    const m = await connectMiner(
      h,
      "grpc",
      minerKey,
      [{ id: "m1", maxConcurrency: 2, contextLength: 0, kinds: [] }],
      {
        plan: () => ({ chunks: [], end: "hang" }),
      },
    );
    const user = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5000 });
    const probing = (await service({ livenessMs: 1000 })).probe(req(), validatorKey.address);
    await m.miner.until(() => m.miner.requests.length === 2);
    // The probe holds the second ordinary slot: no user request fits any more.
    expect(h.hub.sessions()[0]?.models[0]?.inFlight).to.equal(2);
    expect(() => h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 1000 })).to.throw(/at capacity/);
    user.cancel("test over");
    await waitForSessions(h.hub, (s) => s[0]?.models[0]?.inFlight === 1, "the user's slot to be freed");
    // The probe's slot is one of the two ordinary ones (not the spare): one user fits again, not two.
    const again = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5000 });
    expect(() => h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 1000 })).to.throw(/at capacity/);
    again.cancel("test over");
    expect((await probing).ok).to.equal(false);
  });

  it("probes a miner saturated by users through the spare slot; three probes in a row without one fail it", async () => {
    const m = await connectMiner(
      h,
      "grpc",
      minerKey,
      [{ id: "m1", maxConcurrency: 1, contextLength: 0, kinds: [] }],
      {
        plan: () => ({ chunks: [], end: "hang" }),
      },
    );
    const user = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5000 });
    const s = await service({ livenessMs: 2000 });
    // The first probe holds the spare slot (probe() dispatches before its first await).
    const holding = s.probe(req(), validatorKey.address);
    await m.miner.until(() => m.miner.requests.length === 2);
    expect(() => h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 1000 })).to.throw(/at capacity/);
    const busy = async () =>
      s.probe(req(), validatorKey.address).then(
        () => expect.fail("expected no_capacity"),
        (e: unknown) => e as TensorClawError,
      );
    expect((await busy()).code).to.equal("no_capacity");
    expect((await busy()).code).to.equal("no_capacity");
    expect(stateOf(minerKey.address)).to.deep.equal(["active"]);
    const third = await s.probe(req(), validatorKey.address);
    expect(third).to.include({ ok: false, ghost: true });
    expect(third.error).to.match(/not probeable for 3 probes in a row/);
    expect(m.miner.requests).to.have.length(2);
    user.cancel("test over");
    expect((await holding).ok).to.equal(false);
  });

  describe("arriving like a user request (with the router's routing book)", () => {
    /** A book without exploration: a busy miner beside an idle one never gets a user request. */
    const book = () =>
      new RoutingBook({ now: () => performance.now(), random: seededRandom(4), picker: { exploreRate: 0 } });
    /** A miner that holds every user request saying "busy" and answers the rest (probes). */
    const plan = (r: { chat?: { messages: { content?: string }[] } }) =>
      r.chat?.messages[0]?.content === "busy"
        ? { chunks: [], end: "hang" as const }
        : { chunks: WORDS, end: { usage: [3, 10] as [number, number] } };
    /** Miner A holds every user request ("busy"); B serves anything; both answer probes. */
    const twoMiners = async (aAnswersProbes = true) => {
      const a = await connectMiner(h, "grpc", minerKey, undefined, {
        plan: aAnswersProbes ? plan : () => ({ chunks: [], end: "hang" as const }),
      });
      const b = await connectMiner(h, "grpc", otherKey, undefined, { plan });
      await waitForSessions(h.hub, (s) => s.length === 2, "both miners");
      const users = [1, 2, 3].map(() =>
        h.hub.dispatch(a.sessionId, "m1", chat("busy"), { deadlineMs: 60_000 }),
      );
      await a.miner.until(() => a.miner.requests.length === 3);
      return { a, b, users };
    };

    /** The service with the book, a fake clock, a 500 ms hold and its holds recorded. */
    const heldService = async (seed: number, queue?: (clock: FakeClock) => ProbeQueue) => {
      const clock = new FakeClock(Date.now());
      const holds: [number, string][] = [];
      const s = await service({
        clock,
        routing: book(),
        random: seededRandom(seed),
        arrivalHoldMs: 500,
        onArrivalHold: (ms, outcome) => holds.push([ms, outcome]),
        ...(queue === undefined ? {} : { queue: queue(clock) }),
      });
      return { clock, holds, s };
    };

    it("waits while its miner is busier than users would find it, and goes once it is not", async () => {
      const { a, users } = await twoMiners();
      const { clock, holds, s } = await heldService(5);
      const probing = s.probe(req(), validatorKey.address);
      // 200 ms of trials (the hold is 500): A has 3 in flight and B none, so no user would go to A.
      for (let t = 0; t < 200; t += 10) {
        await clock.untilPending();
        await clock.advance(10);
      }
      expect(a.miner.requests).to.have.length(3);
      for (const u of users) u.cancel("test over");
      await waitForSessions(h.hub, (x) => x.every((v) => v.inFlight === 0), "A's users to end");
      for (let t = 0; t < 300 && a.miner.requests.length === 3; t += 10) {
        await clock.untilPending();
        await clock.advance(10);
      }
      expect(a.miner.requests, "the probe once A is as idle as B").to.have.length(4);
      expect((await probing).ok).to.equal(true);
      expect(holds).to.have.length(1);
      expect(holds[0]?.[1]).to.equal("user_like");
      expect(holds[0]?.[0]).to.be.within(200, 500);
    });

    it("goes after the hold when its miner stays busy, and at once to a ghost", async () => {
      const { a, users } = await twoMiners();
      const { clock, holds, s } = await heldService(6);
      const probing = s.probe(req(), validatorKey.address);
      for (let t = 0; t < 480; t += 10) {
        await clock.untilPending();
        await clock.advance(10);
      }
      expect(a.miner.requests, "held for up to 500 ms").to.have.length(3);
      for (let t = 0; t < 100 && a.miner.requests.length === 3; t += 10) {
        await clock.untilPending();
        await clock.advance(10);
      }
      expect(a.miner.requests, "sent when the hold ran out").to.have.length(4);
      expect((await probing).ok).to.equal(true);
      // A ghost gets no user traffic whatever the load: nothing to imitate, so no wait.
      h.hub.setGhost(minerKey.address, true);
      const ghostProbe = s.probe(req(), validatorKey.address);
      await a.miner.until(() => a.miner.requests.length === 5);
      expect((await ghostProbe).ok).to.equal(true);
      // The first hold ran out near 500 ms; the ghost's took no time.
      expect(holds.map(([, o]) => o)).to.deep.equal(["expired", "unreachable"]);
      expect(holds[0]?.[0]).to.be.within(400, 500);
      expect(holds[1]?.[0]).to.equal(0);
      for (const u of users) u.cancel("test over");
    });

    /** Miner A full (its 2 slots held by users) beside an idle B; both answer probes. */
    const fullMiner = async () => {
      const models = [{ id: "m1", maxConcurrency: 2, contextLength: 0, kinds: [] }];
      const a = await connectMiner(h, "grpc", minerKey, models, { plan });
      await connectMiner(h, "grpc", otherKey, models, { plan });
      await waitForSessions(h.hub, (s) => s.length === 2, "both miners");
      const users = [1, 2].map(() => h.hub.dispatch(a.sessionId, "m1", chat("busy"), { deadlineMs: 60_000 }));
      await a.miner.until(() => a.miner.requests.length === 2);
      return { a, users };
    };
    /** Moves the fake clock on by `ms` in 10 ms steps, or less once `done` holds. */
    const tick = async (clock: FakeClock, ms: number, done: () => boolean = () => false) => {
      for (let t = 0; t < ms && !done(); t += 10) {
        await clock.untilPending();
        await clock.advance(10);
      }
    };

    it("keeps looking past the hold while its tunnel is full, and goes at a user-like moment once it is not", async () => {
      const { a, users } = await fullMiner();
      const { clock, holds, s } = await heldService(8);
      const probing = s.probe(req(), validatorKey.address);
      await tick(clock, 1000);
      expect(a.miner.requests, "not sent into the spare slot after the 500 ms hold").to.have.length(2);
      for (const u of users) u.cancel("test over");
      await waitForSessions(h.hub, (x) => x.every((v) => v.inFlight === 0), "A's users to end");
      await tick(clock, 900, () => a.miner.requests.length > 2);
      expect(a.miner.requests, "sent once A is as idle as B").to.have.length(3);
      expect((await probing).ok).to.equal(true);
      expect(holds).to.have.length(1);
      expect(holds[0]?.[1]).to.equal("user_like");
      expect(holds[0]?.[0]).to.be.within(1000, 2000);
    });

    it("does not follow the miner's freeing of a slot: while A stays busier than B it goes at the end of the wait", async () => {
      const { a, users } = await fullMiner();
      const { clock, holds, s } = await heldService(10);
      const probing = s.probe(req(), validatorKey.address);
      await tick(clock, 1000);
      users[0]?.cancel("test over");
      await waitForSessions(h.hub, (x) => x[0]?.models[0]?.inFlight === 1, "a user's slot to free");
      // A has a free slot now, but one request in flight to B's none: no user request would go there.
      await tick(clock, 800);
      expect(a.miner.requests, "not sent when the slot freed").to.have.length(2);
      await tick(clock, 300, () => a.miner.requests.length > 2);
      expect(a.miner.requests, "sent at the end of the wait").to.have.length(3);
      // Into the ordinary slot that came free: A is full again for users.
      expect(() => h.hub.dispatch(a.sessionId, "m1", chat("busy"), { deadlineMs: 1000 })).to.throw(
        /at capacity/,
      );
      expect((await probing).ok).to.equal(true);
      expect(holds.map(([, o]) => o)).to.deep.equal(["expired"]);
      expect(holds[0]?.[0]).to.be.within(1800, 2000);
      users[1]?.cancel("test over");
    });

    it("takes the spare slot when its tunnel stays full for the whole wait", async () => {
      const { a, users } = await fullMiner();
      const { clock, holds, s } = await heldService(9);
      const probing = s.probe(req(), validatorKey.address);
      await tick(clock, 1800);
      expect(a.miner.requests, "still waiting for a free slot").to.have.length(2);
      await tick(clock, 300, () => a.miner.requests.length > 2);
      expect(a.miner.requests, "sent into the spare slot").to.have.length(3);
      expect(h.hub.sessions().find((x) => x.sessionId === a.sessionId)?.models[0]?.inFlight).to.equal(3);
      expect((await probing).ok).to.equal(true);
      expect(holds.map(([, o]) => o)).to.deep.equal(["full"]);
      expect(holds[0]?.[0]).to.be.within(1800, 2000);
      for (const u of users) u.cancel("test over");
    });

    it("waits in the capacity queue with the users while every miner is full, and takes its tunnel's slot on its turn", async () => {
      const { a, users } = await fullMiner();
      const b = h.hub.sessions().find((x) => x.sessionId !== a.sessionId)?.sessionId ?? "";
      const others = [1, 2].map(() => h.hub.dispatch(b, "m1", chat("busy"), { deadlineMs: 60_000 }));
      await waitForSessions(h.hub, (x) => x.every((v) => v.inFlight === 2), "B full too");
      let queue: CapacityQueue | undefined;
      const { clock, holds, s } = await heldService(11, (fake) => {
        queue = new CapacityQueue(
          {
            onChange: (l) => h.hub.onChange(l),
            clock: () => fake.now(),
            metrics: new ApiMetrics(new Registry(), { sessions: () => [] }),
            logger: silentLogger(),
          },
          { maxQueue: 10, queueTimeoutMs: 60_000 },
        );
        return queue;
      });
      const q = queue as CapacityQueue;
      // Two requests of one user wait for any free slot (what the chat endpoint's waits do).
      const served: InferenceCall[] = [];
      const waiting: SlotRequest = {
        account: "user-key",
        picky: false,
        take: () => {
          for (const id of [a.sessionId, b]) {
            try {
              served.push(h.hub.dispatch(id, "m1", chat("busy"), { deadlineMs: 60_000 }));
              return true;
            } catch {}
          }
          return false;
        },
      };
      const waits = [
        q.wait("m1", "chat", waiting, Date.now() + 60_000),
        q.wait("m1", "chat", waiting, Date.now() + 60_000),
      ];
      const probing = s.probe(req(), validatorKey.address);
      await tick(clock, 600);
      expect(q.waiting("m1", "chat"), "the probe queued behind the user").to.equal(3);
      // A's first freed slot is the user's turn; the next is the probe's, while the user still waits.
      users[0]?.cancel("test over");
      await a.miner.until(() => a.miner.requests.length === 3);
      users[1]?.cancel("test over");
      // Read as the probe reaches A (its short answer frees the slot for the user soon after).
      let waitingAtProbe = -1;
      await a.miner.until(() => {
        if (a.miner.requests.length < 4) return false;
        waitingAtProbe = q.waiting("m1", "chat");
        return true;
      });
      const contents = a.miner.requests.slice(0, 4).map((r) => r.chat?.messages[0]?.content);
      expect(contents, "the probe took A's slot on its turn").to.deep.equal([
        "busy",
        "busy",
        "busy",
        "Say hello.",
      ]);
      expect(waitingAtProbe, "the user's second request still waits").to.equal(1);
      expect((await probing).ok).to.equal(true);
      expect(holds.map(([, o]) => o)).to.deep.equal(["queued"]);
      expect(holds[0]?.[0]).to.be.within(500, 1000);
      expect(await Promise.race([waits[0], "waiting"])).to.equal("served");
      for (const c of [...others, ...served]) c.cancel("test over");
      await Promise.all(waits);
    });

    it("counts its hold inside the 8 s liveness deadline: the router answers within 8 s of the call", async () => {
      const { a, users } = await twoMiners(false);
      const { clock, s } = await heldService(7);
      let answered: ProbeResponse | undefined;
      const calledAt = clock.now();
      void s.probe(req(), validatorKey.address).then((r) => {
        answered = r;
      });
      // Held 500 ms (A stays busier than B), then sent to a miner that never answers: the
      // liveness deadline is what is left of 8 s, not 8 s more.
      while (answered === undefined && clock.now() - calledAt < 8000) {
        await clock.untilPending();
        await clock.advance(10);
        await new Promise((r) => setImmediate(r));
      }
      expect(a.miner.requests, "the probe was sent").to.have.length(4);
      expect(answered, "answered within 8 s of the call").to.not.equal(undefined);
      expect(answered).to.include({ ok: false, ghost: true });
      for (const u of users) u.cancel("test over");
    });
  });

  /** The service on a real grpc-js server behind validator auth, and a signed caller. */
  async function overGrpc(deps: Partial<ProbeServiceDeps> = {}) {
    const server = new Server();
    const auth = new ValidatorAuth({
      routerId: h.hub.routerId,
      authorize: allowList([validatorKey.address]),
    });
    addProbeService(server, auth, await probeDeps(h.hub, deps));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const client = new ProbeServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    type Answer = { code: status; res?: ProbeResponse; details?: string };
    const call = (r: ProbeRequest) =>
      signedCall(client, ProbeServiceService.probe, r, validatorKey, h.hub.routerId).then(
        (res): Answer => ({ code: status.OK, res }),
        (e: { code: status; details: string }): Answer => ({ code: e.code, details: e.details }),
      );
    const close = () => {
      client.close();
      server.forceShutdown();
    };
    return { call, close, port };
  }

  it("answers NOT_FOUND, INVALID_ARGUMENT and UNAVAILABLE over signed gRPC", async () => {
    const m = await connectMiner(
      h,
      "grpc",
      minerKey,
      [{ id: "m1", maxConcurrency: 1, contextLength: 0, kinds: [] }],
      {
        plan: () => ({ chunks: [], end: "hang" }),
      },
    );
    const { call, close } = await overGrpc({ livenessMs: 2000 });
    try {
      expect((await call(req({ hotkey: otherKey.address }))).code).to.equal(status.NOT_FOUND);
      expect((await call(req({ model: "absent-model" }))).code).to.equal(status.NOT_FOUND);
      expect((await call(req({ hotkey: "nope" }))).code).to.equal(status.INVALID_ARGUMENT);
      const bad = await call(req({ requestJson: JSON.stringify({ messages: "hi" }) }));
      expect(bad.code).to.equal(status.INVALID_ARGUMENT);
      expect(bad.details).to.match(/^request_json: `messages`/);
      const user = h.hub.dispatch(m.sessionId, "m1", chat(), { deadlineMs: 5000 });
      const first = call(req());
      await m.miner.until(() => m.miner.requests.length === 2);
      // The user slot and the spare slot are both taken.
      expect((await call(req())).code).to.equal(status.UNAVAILABLE);
      expect(m.miner.requests).to.have.length(2);
      user.cancel("test over");
      expect((await first).res).to.include({ ok: false, ghost: true });
    } finally {
      close();
    }
  });

  it("refuses a call that did not come through validator auth", async () => {
    await connectMiner(h, "grpc", minerKey);
    const server = new Server();
    server.addService(ProbeServiceService, probeServiceImplementation(await service(), silentLogger()));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    const client = new ProbeServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      const code = await new Promise<status>((resolve) =>
        client.probe(req(), (e) => resolve(e === null ? status.OK : e.code)),
      );
      expect(code).to.equal(status.UNAUTHENTICATED);
    } finally {
      client.close();
      server.forceShutdown();
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
