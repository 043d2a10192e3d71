import { expect } from "chai";
import { type Clock, systemClock } from "../../common/clock.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { TRACE_ID } from "../../common/trace-id.js";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { Verdict } from "../../gen/tensorclaw/v1/probe.js";
import type { InferenceRequest } from "../../gen/tensorclaw/v1/tunnel.js";
import { hashUser } from "../../router/api/openai-request.js";
import { API_DEFAULTS } from "../../router/api/server.js";
import { probeAccount } from "../../router/services/probe-body.js";
import { USER_DISCONNECT_REASON } from "../../router/services/probe-run.js";
import { RouterClient } from "../../validator/router-client.js";
import { type RouterOptions, type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { FakeMiner, type FakeMinerOptions } from "../support/tunnel-fake-miner.js";

const MODEL = "probe-model";
const WORDS = [" one", " two", " three", " four", " five", " six", " seven", " eight", " nine", " ten"];
/** The wall clock of the router's API and probes, frozen: deadlines are exactly the rule's. */
const FROZEN_MS = 1_750_000_000_000;

/**
 * The router's ProbeService against its real Business API and tunnel hub,
 * with miners on real tunnels that record every frame they get: what a
 * miner sees of a probe is what it sees of a user request.
 */
describe("probes through the router look like user requests to the miner", function () {
  this.timeout(30_000);
  let validator: Hotkey;
  let router: RouterUnderTest;
  let rc: RouterClient;
  const tunnels: RawTunnelClient[] = [];

  before(async () => {
    validator = await throwawayHotkey();
  });
  const start = async (opts: RouterOptions = {}) => {
    const frozen: Clock = { ...systemClock, now: () => FROZEN_MS };
    router = await startRouter({ clock: frozen, chat: { keepAliveMs: 0 }, ...opts });
    rc = new RouterClient([router.grpcUrl], { signer: validator, logger: silentLogger() });
  };
  afterEach(async () => {
    rc.close();
    for (const t of tunnels.splice(0)) t.destroy();
    await router.close();
  });

  /** A miner on a raw tunnel serving MODEL with a scripted FakeMiner. */
  async function miner(
    opts: FakeMinerOptions = {},
    maxConcurrency = 4,
  ): Promise<{ key: Hotkey; fake: FakeMiner }> {
    const key = await throwawayHotkey();
    const tunnel = await RawTunnelClient.open("grpc", {
      grpc: router.grpcUrl.slice("grpc://".length),
      ws: "",
    });
    tunnels.push(tunnel);
    const verdict = await tunnel.handshake(key, {
      models: [{ id: MODEL, maxConcurrency, contextLength: 0, kinds: [] }],
    });
    if (verdict.accept === undefined) throw new Error(`refused: ${verdict.reject?.message}`);
    const fake = new FakeMiner(tunnel, opts);
    await waitForSessions(router.hub, (s) => s.some((x) => x.hotkey === key.address), "the miner to be live");
    return { key, fake };
  }

  /** A user's request: the body as JSON over HTTP, its answer read to the end. */
  async function user(body: Record<string, unknown>): Promise<number> {
    const res = await fetch(`${router.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, ...body }),
    });
    await res.text();
    return res.status;
  }

  const probe = async (hotkey: string, body: Record<string, unknown>, cutAfterTokens: number) => {
    const out = await rc.probe(hotkey, { body, cutAfterTokens, timeoutMs: 10_000 });
    if (out.kind !== "probed") throw new Error(`probe not run: ${JSON.stringify(out)}`);
    return out.response;
  };

  it("sends a probe's body in the very frame a user's body gets, on the same request-id counter", async () => {
    // A wall clock that moves 1 ms at every read: time passes in the router before each dispatch,
    // more for a user (body, accounting) than for a probe, and the frames still agree.
    let ticks = 0;
    await start({ clock: { ...systemClock, now: () => FROZEN_MS + ticks++ } });
    const m = await miner();
    const body = {
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "Name a river." },
      ],
      temperature: 0.3,
      top_p: 0.9,
      seed: 7,
      stop: ["\n\n"],
      user: "alice",
      stream: true,
      top_k: 40,
    };
    expect(await user(body)).to.equal(200);
    // The body's model is ignored: the probe goes to the model the router draws.
    const res = await probe(m.key.address, { ...body, model: "whatever" }, 5);
    expect(res).to.include({ ok: true, model: MODEL, content: "abc" });
    expect(await user(body)).to.equal(200);
    const [u1, p, u2] = m.fake.requests as [InferenceRequest, InferenceRequest, InferenceRequest];
    expect(m.fake.requests.map((r) => r.requestId)).to.deep.equal([1, 2, 3]);
    // Identical but for the ids and the `user` hash (the accounts differ: a key, a validator); the
    // trace ids are drawn the same way (32 random hex), each its own.
    for (const r of [u1, p, u2]) expect(r.traceId).to.match(TRACE_ID);
    expect(new Set([u1.traceId, p.traceId, u2.traceId]).size).to.equal(3);
    const strip = (r: InferenceRequest) => ({
      ...r,
      requestId: 0,
      traceId: "",
      chat: { ...r.chat, user: "" },
    });
    expect(strip(p)).to.deep.equal(strip(u1));
    expect(strip(u2)).to.deep.equal(strip(u1));
    expect(p.deadlineMs).to.equal(API_DEFAULTS.requestTimeoutMs);
    // Neither carries a token limit the caller did not set: none is injected.
    expect(p.chat).to.include({ maxTokens: undefined, maxCompletionTokens: undefined, n: undefined });
    expect(p.chat?.extraJson).to.equal(JSON.stringify({ top_k: 40 }));
    expect(u1.chat?.user).to.equal(hashUser("alice", "anonymous", "test-salt"));
    expect(p.chat?.user).to.equal(hashUser("alice", probeAccount(validator.address), "test-salt"));
    expect(p.chat?.user).to.match(/^u_[0-9a-f]{32}$/);
    // Probe tokens are never credited, and the routing book saw only the users.
    const events = await router.usage.waitFor(2);
    expect(events.map((e) => e.minerHotkey)).to.deep.equal([m.key.address, m.key.address]);
    expect(router.routing.view().find((v) => v.hotkey === m.key.address)?.outcomes.served).to.equal(2);
  });

  it("waits in the capacity queue with users while its miner is full, and takes the slot on its turn", async () => {
    await start({ clock: systemClock });
    const m = await miner(
      {
        plan: (r) =>
          r.chat?.messages[0]?.content === "busy"
            ? { chunks: [], end: "hang" }
            : { chunks: WORDS, end: { usage: [3, 10] } },
      },
      1,
    );
    // Users and probes waiting (the queue's metrics count users only).
    const queued = async () => router.queue.waiting(MODEL, "chat");
    const until = async (what: string, ok: () => boolean | Promise<boolean>) => {
      for (const end = Date.now() + 5_000; !(await ok()); await new Promise((r) => setTimeout(r, 5))) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      }
    };
    // One user request holds the miner's only slot; two more wait in the queue.
    const aborts = [0, 1, 2].map(() => new AbortController());
    const users: Promise<unknown>[] = [];
    const send = (i: number) =>
      users.push(
        fetch(`${router.baseURL}/chat/completions`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "busy" }], stream: true }),
          signal: aborts[i]?.signal,
        })
          .then((r) => r.text())
          .catch(() => "aborted"),
      );
    // One at a time, so the queue's order is theirs.
    send(0);
    await until("the first user on the miner", () => m.fake.requests.length === 1);
    send(1);
    await until("a user queued", async () => (await queued()) === 1);
    send(2);
    await until("two users queued", async () => (await queued()) === 2);
    const probing = probe(
      m.key.address,
      { messages: [{ role: "user", content: "Say hello." }], stream: true },
      5,
    );
    await until("the probe queued after its hold", async () => (await queued()) === 3);
    // The queue's metrics count the users only.
    const metrics = await (await fetch(router.baseURL.replace(/\/v1$/, "/metrics"))).text();
    expect(metrics).to.match(/^tensorclaw_api_queue_depth\{model="probe-model"\} 2$/m);
    // The first slot freed is the users' turn, the next the probe's: the users still wait then.
    aborts[0]?.abort();
    await until("the second user on the miner", () => m.fake.requests.length >= 2);
    aborts[1]?.abort();
    // The probe is short: the last user may follow it before this looks.
    await until("the next request on the miner", () => m.fake.requests.length >= 3);
    const contents = m.fake.requests.slice(0, 3).map((r) => r.chat?.messages[0]?.content);
    expect(contents).to.deep.equal(["busy", "busy", "Say hello."]);
    expect(await probing).to.include({ ok: true, model: MODEL });
    await until("the last user on the miner", () => m.fake.requests.length === 4);
    aborts[2]?.abort();
    await Promise.all(users);
  });

  it("cuts a liveness probe with exactly the Cancel a user's disconnect sends", async () => {
    await start();
    const m = await miner({ plan: () => ({ chunks: WORDS, end: "hang" }) });
    // A user who leaves after the first piece of a streamed answer.
    const abort = new AbortController();
    const res = await fetch(`${router.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true }),
      signal: abort.signal,
    });
    const reader = res.body?.getReader();
    await reader?.read();
    abort.abort();
    await m.fake.until(() => m.fake.cancels.length === 1);
    const r = await probe(
      m.key.address,
      { messages: [{ role: "user", content: "Count to ten." }], stream: true },
      5,
    );
    expect(r).to.include({ ok: true, cut: true, content: WORDS.slice(0, 5).join(""), completionTokens: 5 });
    await m.fake.until(() => m.fake.cancels.length === 2);
    const [userCancel, probeCancel] = m.fake.cancels;
    expect(probeCancel?.reason).to.equal(userCancel?.reason);
    expect(probeCancel?.reason).to.equal(USER_DISCONNECT_REASON);
    expect(probeCancel?.requestId).to.equal(2);
  });

  it("relays a whole audit (no cut) and returns its full content", async () => {
    await start();
    const m = await miner({
      plan: () => ({
        chunks: WORDS,
        end: { usage: [12, 10] },
        finishReason: FinishReason.FINISH_REASON_STOP,
      }),
    });
    const body = {
      messages: [{ role: "user", content: "Count to ten." }],
      temperature: 0,
      seed: 1,
      max_tokens: 64,
    };
    const r = await probe(m.key.address, body, 0);
    expect(r).to.include({ ok: true, cut: false, content: WORDS.join(""), completionTokens: 10 });
    expect(r.finishReason).to.equal(FinishReason.FINISH_REASON_STOP);
    expect(m.fake.cancels).to.deep.equal([]);
    expect(m.fake.requests[0]?.chat).to.deep.include({
      temperature: 0,
      seed: 1n,
      maxTokens: 64,
      stream: false,
    });
  });

  it("fails a miner that is not live by the liveness deadline, cancelling like a user, and users lose it", async () => {
    await start({ livenessMs: 300 });
    const m = await miner({ plan: () => ({ chunks: [], end: "hang" }) });
    const r = await probe(m.key.address, { messages: [{ role: "user", content: "hi" }] }, 5);
    expect(r).to.include({ ok: false, ghost: true, error: "no token within the liveness deadline" });
    await m.fake.until(() => m.fake.cancels.length === 1);
    expect(m.fake.cancels[0]?.reason).to.equal(USER_DISCONNECT_REASON);
    expect(await user({ messages: [{ role: "user", content: "hi" }] })).to.equal(503);
  });

  it("routes no user traffic to a FAILED (hotkey, model), still probes it, and a later verdict restores it", async () => {
    await start();
    const a = await miner();
    const b = await miner();
    const served = (m: { fake: FakeMiner }) => m.fake.requests.length;
    const users = async (n: number) => {
      for (let i = 0; i < n; i++)
        expect(await user({ messages: [{ role: "user", content: `q${i}` }] })).to.equal(200);
    };
    const failed = (hotkey: string) => ({
      hotkey,
      model: MODEL,
      verdict: Verdict.VERDICT_FAILED,
      detail: "t",
    });
    const verified = (hotkey: string) => ({
      hotkey,
      model: MODEL,
      verdict: Verdict.VERDICT_VERIFIED,
      detail: "",
    });

    const r1 = await rc.reportVerdicts([failed(a.key.address)]);
    expect(r1.routers).to.deep.equal([{ url: router.grpcUrl, excluded: 1 }]);
    await users(8);
    expect([served(a), served(b)]).to.deep.equal([0, 8]);
    // The probe still reaches the failed miner, so it can pass again.
    expect(await probe(a.key.address, { messages: [{ role: "user", content: "hi" }] }, 5)).to.include({
      ok: true,
    });
    expect(served(a)).to.equal(1);

    await rc.reportVerdicts([verified(a.key.address), failed(b.key.address)]);
    await users(8);
    expect([served(a), served(b)]).to.deep.equal([9, 8]);

    // Nobody left for users: 503, not a route to a failed miner.
    await rc.reportVerdicts([failed(a.key.address)]);
    expect(await user({ messages: [{ role: "user", content: "x" }] })).to.equal(503);
    const r2 = await rc.reportVerdicts([
      { ...verified(a.key.address), verdict: Verdict.VERDICT_UNVERIFIABLE },
      verified(b.key.address),
    ]);
    expect(r2.routers[0]?.excluded).to.equal(0);
    await users(1);
    expect(served(a) + served(b)).to.equal(18);
  });

  it("answers INVALID_ARGUMENT, naming the field, for a body a user would get 400 for", async () => {
    await start();
    const m = await miner();
    const out = await rc.probe(m.key.address, { body: { messages: [], stream: true }, cutAfterTokens: 5 });
    expect(out.kind).to.equal("router_error");
    expect(out.kind === "router_error" && out.detail).to.match(/^INVALID_ARGUMENT: request_json: `messages`/);
    const bad = await rc.probe(m.key.address, {
      body: { messages: [{ role: "user", content: "x" }], max_tokens: 0 },
      cutAfterTokens: 5,
    });
    expect(bad.kind === "router_error" && bad.detail).to.match(
      /INVALID_ARGUMENT: request_json: `max_tokens`/,
    );
    expect(m.fake.requests).to.deep.equal([]);
  });
});
