/**
 * Can a miner tell a probe from a user? A real router with three scripted
 * miners serves a stream of realistic user requests (test/support/
 * user-traffic.ts) while a real validator probes the miners through
 * ProbeService at its own random times, its probes shaped by the router's
 * published traffic shape and worded from a private corpus drawn from the
 * same population as the users. Every request frame the miners receive is
 * kept with its arrival time and what was in flight, labelled by the
 * router's dispatch (probe or not), and two learners tuned on the first
 * part of the mix must not separate probes from users on the rest, among
 * the requests of each miner.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { systemClock } from "../../common/clock.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { TRACE_ID } from "../../common/trace-id.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { InferenceRequest } from "../../gen/tensorclaw/v1/tunnel.js";
import { TrafficShapeRecorder } from "../../router/services/traffic-shape.js";
import type { TunnelCall } from "../../router/tunnel/call.js";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { ProbeCorpus } from "../../validator/probe-gen/corpus.js";
import { RouterClient } from "../../validator/router-client.js";
import { FileStateStore } from "../../validator/state-store-file.js";
import { Validator } from "../../validator/validator.js";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { seededRandom } from "../support/api-random.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { pollUntil } from "../support/poll.js";
import { bestDetectorAccuracy, type ObservedRequest } from "../support/probe-classifier.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { FakeMiner } from "../support/tunnel-fake-miner.js";
import { userMessages, userRequest } from "../support/user-traffic.js";

const MODEL = "chat-model";
const MINERS = 3;
/** User requests that teach the router the traffic shape before probing starts. */
const WARM_UP = 1500;
/** Requests per second in the mix, users and probes alike. */
const USER_RATE = 45;
const PROBE_RATE = 45;
/** Length of the mixed phase. */
const MIX_MS = 15_000;

/** Every answer: a dozen words, like a short real answer. */
const ANSWER = Array.from({ length: 12 }, (_, i) => ` word${i}`);

describe("probes a miner cannot tell from users", function () {
  this.timeout(120_000);
  let router: RouterUnderTest;
  let dir: string;
  const tunnels: RawTunnelClient[] = [];
  const miners: { key: Hotkey; fake: FakeMiner }[] = [];
  /** Per `${sessionId}:${requestId}`: whether the router dispatched it as a probe. */
  const labels = new Map<string, boolean>();

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-indist-"));
    router = await startRouter({ trafficShape: new TrafficShapeRecorder(), chat: { keepAliveMs: 0 } });
    // The router's own dispatch says which requests are probes: the ground truth, never seen by a miner.
    const hub = router.hub;
    const dispatch = hub.dispatch.bind(hub);
    hub.dispatch = (sessionId, model, chat, opts) => {
      const call = dispatch(sessionId, model, chat, opts);
      labels.set(`${sessionId}:${(call as TunnelCall).requestId}`, opts.probe === true);
      return call;
    };
    for (let i = 0; i < MINERS; i++) {
      const key = await throwawayHotkey();
      const tunnel = await RawTunnelClient.open("grpc", {
        grpc: router.grpcUrl.slice("grpc://".length),
        ws: "",
      });
      tunnels.push(tunnel);
      const verdict = await tunnel.handshake(key, {
        models: [{ id: MODEL, maxConcurrency: 16, contextLength: 0, kinds: [] }],
      });
      if (verdict.accept === undefined) throw new Error(`refused: ${verdict.reject?.message}`);
      miners.push({
        key,
        fake: new FakeMiner(tunnel, { plan: () => ({ chunks: ANSWER, end: { usage: [10, 12] } }) }),
      });
    }
    await waitForSessions(router.hub, (s) => s.length === MINERS, "the miners to be live");
  });
  after(async () => {
    for (const t of tunnels.splice(0)) t.destroy();
    await router?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function send(body: Record<string, unknown>): Promise<void> {
    const res = await fetch(`${router.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, ...body }),
    });
    await res.text();
    if (res.status !== 200) throw new Error(`user request failed: ${res.status}`);
  }

  /** What each miner saw from `since` (indices per miner), labelled. */
  function observed(since: readonly number[]): ObservedRequest[] {
    const sessions = router.hub.sessions();
    const out: ObservedRequest[] = [];
    miners.forEach(({ key, fake }, m) => {
      const sessionId = sessions.find((s) => s.hotkey === key.address)?.sessionId ?? "";
      for (let i = since[m] as number; i < fake.requests.length; i++) {
        const req = fake.requests[i] as InferenceRequest;
        const at = fake.arrivals[i] as { atMs: number; inFlight: number };
        const probe = labels.get(`${sessionId}:${req.requestId}`);
        if (probe === undefined) throw new Error(`no label for ${sessionId}:${req.requestId}`);
        out.push({ req, atMs: at.atMs, inFlight: at.inFlight, tunnel: sessionId, probe });
      }
    });
    return out.sort((a, b) => a.atMs - b.atMs);
  }

  it("keeps a classifier tuned on a labelled mix at no better than 60 % balanced accuracy per miner", async () => {
    const users = seededRandom(101);
    // Warm-up: the router learns what its traffic looks like.
    for (let i = 0; i < WARM_UP; i += 10) {
      await Promise.all(Array.from({ length: 10 }, () => send(userRequest(users))));
    }
    const since = miners.map((m) => m.fake.requests.length);

    // The validator's private corpus: other conversations of the same population.
    const corpusRandom = seededRandom(202);
    const lines = Array.from({ length: 2000 }, () =>
      JSON.stringify({
        messages: userMessages(corpusRandom, {
          system: corpusRandom() < 0.45,
          turns: corpusRandom() < 0.25 ? 2 : 1,
        }),
      }),
    );
    await writeFile(join(dir, "corpus.jsonl"), `${lines.join("\n")}\n`);
    const validatorKey = await throwawayHotkey();
    const client = new RouterClient([router.grpcUrl], { signer: validatorKey, logger: silentLogger() });
    const validator = new Validator({
      router: client,
      store: await FileStateStore.open(join(dir, "state.json")),
      chain: undefined,
      selfHotkey: validatorKey.address,
      settings: {
        netuid: 92,
        dryRun: true,
        probeConcurrency: 64,
        probeTimeoutMs: 9_000,
        probeIntervalMs: (1000 * MINERS) / PROBE_RATE,
        weightsIntervalMs: 3_600_000,
        latencyTiers: DEFAULT_LATENCY_TIERS,
        verifyShare: 0.2,
        corpus: await ProbeCorpus.load(join(dir, "corpus.jsonl")),
      },
      clock: systemClock,
      randomBytes: (n) => randomBytes(n),
      random: seededRandom(303),
      logger: silentLogger(),
      print: () => {},
    });

    // The mix: users arrive as a Poisson stream while the validator probes on its own schedule.
    const stop = new AbortController();
    const probing = validator.run(stop.signal);
    const inFlight: Promise<void>[] = [];
    const started = Date.now();
    let next = started;
    while (Date.now() - started < MIX_MS) {
      next += -Math.log(1 - users()) * (1000 / USER_RATE);
      await new Promise((r) => setTimeout(r, Math.max(0, next - Date.now())));
      inFlight.push(send(userRequest(users)));
    }
    await Promise.all(inFlight);
    stop.abort();
    await probing;
    client.close();
    await pollUntil(() => miners.every((m) => m.fake.active === 0), {
      timeoutMs: 10_000,
      what: "answers to end",
    });

    const mix = observed(since);
    const probes = mix.filter((o) => o.probe).length;
    // Every request carries a trace id of one shape, drawn at random: no prefix, counter or
    // length sets probes apart (the learners below see only the chat body and timing).
    const ids = new Set<string>();
    for (const o of mix) {
      expect(o.req.traceId, `trace id of a ${o.probe ? "probe" : "user request"}`).to.match(TRACE_ID);
      ids.add(o.req.traceId);
    }
    expect(ids.size, "trace ids are never reused").to.equal(mix.length);
    const firstHex = (probe: boolean) => {
      const seen = new Set(mix.filter((o) => o.probe === probe).map((o) => o.req.traceId.slice(0, 4)));
      return seen.size;
    };
    // A per-process prefix would leave one distinct prefix per kind; random ids leave hundreds.
    expect(firstHex(true), "distinct probe id prefixes").to.be.above(200);
    expect(firstHex(false), "distinct user id prefixes").to.be.above(200);
    expect(probes, "probes in the mix").to.be.above(250);
    expect(mix.length - probes, "user requests in the mix").to.be.above(250);
    const cut = Math.floor(mix.length * 0.6);
    const train = mix.slice(0, cut);
    const test = mix.slice(cut);
    const acc = bestDetectorAccuracy(train, test);
    expect(acc.best, `logistic ${acc.logistic.toFixed(3)}, tree ${acc.tree.toFixed(3)}`).to.be.at.most(0.6);

    // The same learners on the same frames, with the probes rewritten to the old fixed probe shape
    // (one short user message, max_tokens 5, streamed, nothing else): they must see through that.
    const old = (o: ObservedRequest): ObservedRequest =>
      o.probe
        ? {
            ...o,
            req: {
              ...o.req,
              chat: ChatRequest.fromPartial({
                messages: [{ role: "user", content: o.req.chat?.messages.at(-1)?.content ?? "" }],
                maxTokens: 5,
                stream: true,
              }),
            },
          }
        : o;
    const control = bestDetectorAccuracy(train.map(old), test.map(old));
    expect(control.best, "the detector finds the old probes").to.be.at.least(0.95);
  });
});
