// The tunnel suite of issue 3, written once and run over gRPC and over WSS:
// the real miner (in-process, or as a `tensorclaw miner` child process where
// a kill is needed) against the real router tunnel hub on real servers, with
// a real OpenAI-compatible HTTP backend behind the miner.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { expect } from "chai";
import { systemClock } from "../../common/clock.js";
import { type Hotkey, hotkeyFromMnemonic } from "../../common/identity.js";
import { ChatRequest, FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { countPromptTokens, countTextTokens } from "../../miner/backend/token-counter.js";
import { Miner, type MinerSettings } from "../../miner/miner.js";
import type { BackoffPolicy } from "../../miner/tunnel/backoff.js";
import { MemoryRouterPins } from "../../miner/tunnel/router-pins.js";
import type { SessionView, TransportKind, TunnelEvent } from "../../router/tunnel/types.js";
import { CLI } from "../support/cli.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { minerDataDirArgs } from "../support/miner-data-dir.js";
import { type MinerTestRouter, sessionOf, startMinerTestRouter } from "../support/miner-router.js";
import { backendTokens, type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";
import { freePort } from "../support/redis.js";

const MODEL = "test-model";
const FAST_BACKOFF: BackoffPolicy = { baseMs: 100, capMs: 400, stableAfterMs: 60_000 };

// Streamed unless a test says otherwise: most cases here are about relaying a stream.
function chat(text: string, extra: Partial<ChatRequest> = {}): ChatRequest {
  return ChatRequest.fromPartial({
    messages: [{ role: "user", content: text }],
    maxTokens: 100_000,
    stream: true,
    ...extra,
  });
}

async function collect(events: AsyncIterable<TunnelEvent>): Promise<TunnelEvent[]> {
  const out: TunnelEvent[] = [];
  for await (const e of events) out.push(e);
  return out;
}

/** A session in a hub listing, if live. */
function viewOf(sessions: readonly SessionView[], sessionId: string): SessionView | undefined {
  return sessions.find((v) => v.sessionId === sessionId);
}

function textOf(events: readonly TunnelEvent[]): string {
  return events.map((e) => (e.type === "chunk" ? e.chunk.contentDelta : "")).join("");
}

function terminal(events: readonly TunnelEvent[]): TunnelEvent | undefined {
  return events.at(-1);
}

function settings(routers: string[], transport: "auto" | TransportKind, backendUrl: string): MinerSettings {
  return {
    router: routers,
    backend: backendUrl,
    backendKey: undefined,
    models: [],
    maxConcurrency: 200,
    // What the tunnel carries is under test here, not how the miner learns its concurrency.
    fixedConcurrency: true,
    contextLength: 0,
    transport,
    healthIntervalMs: 60_000,
    connectTimeoutMs: 2000,
  };
}

/** A `tensorclaw miner` child process and the hotkey it serves with. */
interface ChildMiner {
  readonly proc: ChildProcess;
  readonly address: string;
  readonly sessionId: string;
}

async function spawnMiner(
  routerUrl: string,
  transport: TransportKind,
  backendUrl: string,
): Promise<ChildMiner> {
  const mnemonic = mnemonicGenerate();
  const address = (await hotkeyFromMnemonic(mnemonic)).address;
  const proc = spawn(
    process.execPath,
    [
      CLI,
      "miner",
      ...minerDataDirArgs(),
      "--router",
      routerUrl,
      "--backend",
      backendUrl,
      "--transport",
      transport,
      "--log-level",
      "info",
    ],
    { env: { ...process.env, TENSORCLAW_MNEMONIC: mnemonic }, stdio: ["ignore", "ignore", "pipe"] },
  );
  let buffered = "";
  const sessionId = await new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer) => {
      buffered += d.toString();
      for (const line of buffered.split("\n")) {
        if (!line.includes("connected via")) continue;
        proc.stderr?.off("data", onData);
        resolve(String((JSON.parse(line) as { sessionId: string }).sessionId));
        return;
      }
    };
    proc.stderr?.on("data", onData);
    proc.once("exit", (code) => reject(new Error(`miner exited (${code}) before connecting:\n${buffered}`)));
  });
  // The mnemonic must never reach the log.
  expect(buffered).not.to.include(mnemonic.split(" ").slice(0, 4).join(" "));
  return { proc, address, sessionId };
}

for (const transport of ["grpc", "ws"] as const) {
  describe(`tunnel suite over ${transport === "grpc" ? "gRPC" : "WSS"}`, () => {
    let router: MinerTestRouter;
    let backend: OpenAIBackend;
    let hotkey: Hotkey;
    const miners: Miner[] = [];
    const urlOf = (r: MinerTestRouter) => (transport === "grpc" ? r.grpcUrl : r.wsUrl);

    async function startMiner(over: Partial<MinerSettings> = {}, backoff = FAST_BACKOFF) {
      const miner = new Miner(
        { ...settings([urlOf(router)], transport, backend.url), ...over },
        { hotkey, routerPins: new MemoryRouterPins(), backoff },
      );
      miners.push(miner);
      await miner.start();
      const tunnel = miner.tunnels[0];
      if (tunnel === undefined) throw new Error("no tunnel");
      const status = await tunnel.waitFor((s) => s.state === "connected");
      return { miner, tunnel, sessionId: status.sessionId as string };
    }

    before(async () => {
      hotkey = await throwawayHotkey();
    });
    beforeEach(async () => {
      backend = await startOpenAIBackend({ models: [MODEL], contextLength: 8192, tokens: 8 });
      router = await startMinerTestRouter({
        timings: { initialCreditBytes: 1024, drainReconnectAfterMs: 100 },
      });
    });
    afterEach(async () => {
      await Promise.all(miners.splice(0).map((m) => m.stop()));
      await router.close();
      await backend.close();
    });

    it("completes the handshake and offers the backend's discovered models", async () => {
      const { tunnel, sessionId } = await startMiner({ maxConcurrency: 7 });
      expect(tunnel.status.transport).to.equal(transport);
      const view = sessionOf(router.hub, sessionId);
      expect(view.hotkey).to.equal(hotkey.address);
      expect(view.transport).to.equal(transport);
      expect(view.softwareVersion).to.match(/^tensorclaw-miner\//);
      expect(view.models.map((m) => [m.id, m.maxConcurrency, m.contextLength])).to.deep.equal([
        [MODEL, 7, 8192],
      ]);
    });

    it("keeps one tunnel per router given; a crash of one leaves the other serving", async () => {
      const second = await startMinerTestRouter();
      try {
        const miner = new Miner(
          { ...settings([urlOf(router), urlOf(second)], transport, backend.url) },
          { hotkey, routerPins: new MemoryRouterPins(), backoff: FAST_BACKOFF },
        );
        miners.push(miner);
        await miner.start();
        const [a, b] = miner.tunnels;
        const sa = await a?.waitFor((s) => s.state === "connected");
        const sb = await b?.waitFor((s) => s.state === "connected");
        expect(sessionOf(router.hub, sa?.sessionId as string).hotkey).to.equal(hotkey.address);
        expect(sessionOf(second.hub, sb?.sessionId as string).hotkey).to.equal(hotkey.address);
        await router.crash();
        await a?.waitFor((s) => s.state !== "connected");
        const events = await collect(
          second.hub.dispatch(sb?.sessionId as string, MODEL, chat("still here"), { deadlineMs: 5000 })
            .events,
        );
        expect(terminal(events)).to.include({ type: "usage", completionTokens: 8 });
        expect(b?.status).to.include({ state: "connected", connects: 1 });
      } finally {
        await Promise.all(miners.splice(0).map((m) => m.stop()));
        await second.close();
      }
    });

    it("answers pings: the router measures the round trip and keeps the tunnel", async () => {
      await router.close();
      // Loopback round trips can take under 1 ms; a clock that ticks on every
      // read makes each matched pong a non-zero RTT sample.
      let tick = Date.now();
      router = await startMinerTestRouter({
        timings: { pingIntervalMs: 30, maxMissedPongs: 3 },
        clock: { ...systemClock, now: () => ++tick },
      });
      const { sessionId, tunnel } = await startMiner();
      // A latency estimate only appears once pongs come back for the router's pings.
      await waitForSessions(
        router.hub,
        (s) => (viewOf(s, sessionId)?.latencyMs ?? 0) > 0,
        "a ping round trip",
      );
      expect(tunnel.status).to.include({ state: "connected", connects: 1 });
    });

    it("serves 100 concurrent streaming requests over one tunnel, each in order and intact", async () => {
      const { sessionId } = await startMiner();
      backend.configure({ tokens: 20, tokenDelayMs: 2 });
      const arrivals: number[] = [];
      const results = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const call = router.hub.dispatch(sessionId, MODEL, chat(`request number ${i}`), {
            deadlineMs: 20_000,
          });
          const events: TunnelEvent[] = [];
          for await (const e of call.events) {
            if (e.type === "chunk") arrivals.push(i);
            events.push(e);
          }
          return events;
        }),
      );
      results.forEach((events, i) => {
        expect(textOf(events), `request ${i}`).to.equal(backendTokens(`request number ${i}`, 20).join(""));
        const chunks = events.filter((e) => e.type === "chunk");
        // Only the last chunk carries the finish reason.
        expect(
          chunks.map(
            (e) => e.type === "chunk" && e.chunk.finishReason !== FinishReason.FINISH_REASON_UNSPECIFIED,
          ),
        ).to.deep.equal(chunks.map((_, k) => k === chunks.length - 1));
        expect(terminal(events)).to.deep.equal({ type: "usage", promptTokens: 3 + 3, completionTokens: 20 });
      });
      // The streams really were interleaved on the one tunnel, not served one after another.
      let switches = 0;
      for (let k = 1; k < arrivals.length; k++) if (arrivals[k] !== arrivals[k - 1]) switches++;
      expect(switches).to.be.greaterThan(200);
      expect(backend.chatRequests()).to.have.length(100);
    });

    it("fetches a non-streamed request as one whole completion and relays it", async () => {
      const { sessionId } = await startMiner();
      backend.configure({ tokens: 20 });
      const events = await collect(
        router.hub.dispatch(sessionId, MODEL, chat("all at once", { stream: false }), { deadlineMs: 5000 })
          .events,
      );
      expect(textOf(events)).to.equal(backendTokens("all at once", 20).join(""));
      expect(terminal(events)).to.deep.equal({ type: "usage", promptTokens: 3 + 3, completionTokens: 20 });
      const body = backend.chatRequests().at(-1)?.body as { stream?: unknown; stream_options?: unknown };
      expect(body.stream).to.equal(false);
      expect(body).to.not.have.property("stream_options");
    });

    it("streams a response far larger than the credit window completely", async () => {
      const { sessionId } = await startMiner();
      backend.configure({ tokens: 3000 });
      const events = await collect(
        router.hub.dispatch(sessionId, MODEL, chat("long one"), { deadlineMs: 20_000 }).events,
      );
      expect(textOf(events)).to.equal(backendTokens("long one", 3000).join(""));
      expect(Buffer.byteLength(textOf(events))).to.be.greaterThan(10 * 1024);
      expect(terminal(events)).to.include({ type: "usage", completionTokens: 3000 });
    });

    it("relays tool-call deltas and the tool_calls finish reason", async () => {
      const { sessionId } = await startMiner();
      const req = chat("use the tool", {
        tools: [{ type: "function", name: "lookup", description: "", parametersJson: '{"type":"object"}' }],
      });
      const events = await collect(router.hub.dispatch(sessionId, MODEL, req, { deadlineMs: 5000 }).events);
      const deltas = events.flatMap((e) => (e.type === "chunk" ? e.chunk.toolCalls : []));
      expect(deltas[0]).to.include({ index: 0, functionName: "lookup", type: "function" });
      expect(JSON.parse(deltas.map((d) => d.argumentsDelta).join(""))).to.deep.equal({
        text: backendTokens("use the tool", 8).join(""),
      });
      const last = events.filter((e) => e.type === "chunk").at(-1);
      expect(last?.type === "chunk" && last.chunk.finishReason).to.equal(
        FinishReason.FINISH_REASON_TOOL_CALLS,
      );
      expect(terminal(events)?.type).to.equal("usage");
    });

    it("counts usage with the BPE tokenizer when the backend reports none", async () => {
      const { sessionId } = await startMiner();
      backend.configure({ reportUsage: false, tokens: 12 });
      const run = async (req: ChatRequest) =>
        collect(router.hub.dispatch(sessionId, MODEL, req, { deadlineMs: 5000 }).events);
      const plain = chat("count these tokens for me");
      const plainEvents = await run(plain);
      expect(textOf(plainEvents)).to.equal(backendTokens("count these tokens for me", 12).join(""));
      expect(terminal(plainEvents)).to.deep.equal({
        type: "usage",
        promptTokens: countPromptTokens(plain),
        completionTokens: countTextTokens(textOf(plainEvents)),
      });
      // Tool-call text tokenizes into more tokens than it has chunks, so
      // counting chunks instead of tokens cannot pass this one.
      const withTool = chat("call it", {
        tools: [{ type: "function", name: "lookup", description: "", parametersJson: '{"type":"object"}' }],
      });
      const toolEvents = await run(withTool);
      const chunks = toolEvents.flatMap((e) => (e.type === "chunk" ? [e.chunk] : []));
      const toolText = chunks
        .flatMap((c) => c.toolCalls.map((t) => t.functionName + t.argumentsDelta))
        .join("");
      expect(countTextTokens(toolText)).to.be.greaterThan(chunks.length);
      expect(terminal(toolEvents)).to.deep.equal({
        type: "usage",
        promptTokens: countPromptTokens(withTool),
        completionTokens: countTextTokens(toolText),
      });
    });

    it("authenticates to the backend with --backend-key, for discovery and for requests", async () => {
      backend.configure({ apiKey: "sk-backend-secret" });
      const { sessionId } = await startMiner({ backendKey: "sk-backend-secret" });
      // /v1/models answers 401 without the key: the model is only offered if the key was sent.
      expect(sessionOf(router.hub, sessionId).models.map((m) => m.id)).to.deep.equal([MODEL]);
      const events = await collect(
        router.hub.dispatch(sessionId, MODEL, chat("with a key"), { deadlineMs: 5000 }).events,
      );
      expect(terminal(events)).to.include({ type: "usage", completionTokens: 8 });
      expect(backend.chatRequests().at(-1)?.headers.authorization).to.equal("Bearer sk-backend-secret");
    });

    it("carries a cancel to the backend and frees the slot", async () => {
      const { sessionId } = await startMiner({ maxConcurrency: 1 });
      backend.configure({ tokens: 100_000, tokenDelayMs: 5 });
      const call = router.hub.dispatch(sessionId, MODEL, chat("endless"), { deadlineMs: 20_000 });
      const it = call.events[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.value?.type).to.equal("chunk");
      call.cancel("client went away");
      const aborted = await backend.waitForAbort();
      expect(aborted.completionTokens).to.be.lessThan(100_000);
      const rest: TunnelEvent[] = [];
      for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
      expect(terminal(rest)).to.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED,
      });
      // The miner's CANCELLED answer releases the only slot; the tunnel serves on.
      await waitForSessions(
        router.hub,
        (s) => viewOf(s, sessionId)?.inFlight === 0,
        "the cancelled request to leave the session",
      );
      backend.configure({ tokens: 3, tokenDelayMs: 0 });
      const next = await collect(
        router.hub.dispatch(sessionId, MODEL, chat("after"), { deadlineMs: 5000 }).events,
      );
      expect(terminal(next)).to.include({ type: "usage", completionTokens: 3 });
    });

    it("fails HTTP 500, 429, invalid JSON, a cut stream and a hang per request, tunnel intact", async () => {
      const { sessionId, tunnel } = await startMiner();
      backend.configure({ tokenDelayMs: 1 });
      const run = (directive: string, deadlineMs = 5000) =>
        collect(
          router.hub.dispatch(sessionId, MODEL, chat(`[[backend ${directive}]]`), { deadlineMs }).events,
        );
      const [e500, e429, bad, cut, hang] = await Promise.all([
        run("fault=http500"),
        run("fault=http429"),
        run("fault=invalid-json after=3"),
        run("fault=close-mid-stream after=3"),
        run("fault=hang", 400),
      ]);
      expect(terminal(e500 ?? [])).to.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
      });
      expect(terminal(e429 ?? [])).to.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_OVERLOADED,
      });
      expect(terminal(bad ?? [])).to.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
      });
      expect((bad ?? []).filter((e) => e.type === "chunk")).to.have.length(3);
      expect(terminal(cut ?? [])).to.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
      });
      expect(terminal(hang ?? [])).to.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT,
      });
      // The hanging backend call was abandoned, not leaked.
      await backend.waitForAbort((r) => JSON.stringify(r.body).includes("fault=hang"));
      const ok = await run("tokens=4");
      expect(terminal(ok)).to.include({ type: "usage", completionTokens: 4 });
      expect(tunnel.status).to.include({ state: "connected", sessionId, connects: 1 });
    });

    it("survives the backend going down: requests fail clearly, models go away and come back", async () => {
      const { miner, sessionId, tunnel } = await startMiner({ healthIntervalMs: 100 });
      await backend.stop();
      const down = await collect(
        router.hub.dispatch(sessionId, MODEL, chat("anyone?"), { deadlineMs: 5000 }).events,
      );
      expect(terminal(down)).to.include({
        type: "error",
        code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE,
      });
      await waitForSessions(
        router.hub,
        (s) => viewOf(s, sessionId)?.models.length === 0,
        "the router to see no models",
      );
      expect(miner.catalog.offers()).to.deep.equal([]);
      await backend.listen();
      await waitForSessions(
        router.hub,
        (s) => viewOf(s, sessionId)?.models.length === 1,
        "the router to see the model again",
      );
      const up = await collect(
        router.hub.dispatch(sessionId, MODEL, chat("back?"), { deadlineMs: 5000 }).events,
      );
      expect(terminal(up)).to.include({ type: "usage", completionTokens: 8 });
      expect(tunnel.status.connects).to.equal(1);
    });

    it("a miner process killed mid-stream fails only its own requests", async () => {
      const { sessionId: survivorSession } = await startMiner();
      const child = await spawnMiner(urlOf(router), transport, backend.url);
      try {
        expect(sessionOf(router.hub, child.sessionId).hotkey).to.equal(child.address);
        backend.configure({ tokens: 50, tokenDelayMs: 10 });
        const doomed = router.hub.dispatch(child.sessionId, MODEL, chat("[[backend tokens=100000]] doomed"), {
          deadlineMs: 20_000,
        });
        const survivor = collect(
          router.hub.dispatch(survivorSession, MODEL, chat("survivor"), { deadlineMs: 20_000 }).events,
        );
        const it = doomed.events[Symbol.asyncIterator]();
        expect((await it.next()).value?.type).to.equal("chunk");
        child.proc.kill("SIGKILL");
        const rest: TunnelEvent[] = [];
        for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value);
        expect(terminal(rest)).to.include({
          type: "error",
          code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE,
        });
        const ok = await survivor;
        expect(textOf(ok)).to.equal(backendTokens("survivor", 50).join(""));
        expect(terminal(ok)).to.include({ type: "usage", completionTokens: 50 });
        expect(router.hub.sessions().map((s) => s.sessionId)).to.deep.equal([survivorSession]);
        // The dead miner's backend connection went with it.
        await backend.waitForAbort((r) => JSON.stringify(r.body).includes("doomed"));
      } finally {
        if (child.proc.exitCode === null && child.proc.signalCode === null) {
          child.proc.kill("SIGKILL");
          await once(child.proc, "exit");
        }
      }
    });

    it("is back within a few seconds after the router crashes and restarts (default backoff)", async () => {
      const { tunnel } = await startMiner({}, { baseMs: 1000, capMs: 30_000, stableAfterMs: 30_000 });
      const t0 = Date.now();
      await router.crash();
      await router.start();
      const status = await tunnel.waitFor((s) => s.state === "connected" && s.connects === 2);
      expect(Date.now() - t0).to.be.lessThan(5000);
      const events = await collect(
        router.hub.dispatch(status.sessionId as string, MODEL, chat("hello again"), { deadlineMs: 5000 })
          .events,
      );
      expect(terminal(events)).to.include({ type: "usage", completionTokens: 8 });
    });

    it("stops gracefully: withdraws its models, finishes in-flight work, then hangs up", async () => {
      const { miner, sessionId } = await startMiner();
      backend.configure({ tokens: 40, tokenDelayMs: 5 });
      const inFlight = collect(
        router.hub.dispatch(sessionId, MODEL, chat("let me finish"), { deadlineMs: 10_000 }).events,
      );
      await backend.waitForChatRequests(1);
      const stopped = miner.stop(5000);
      await waitForSessions(
        router.hub,
        (s) => viewOf(s, sessionId)?.models.length === 0,
        "the router to see the models withdrawn",
      );
      const events = await inFlight;
      expect(textOf(events)).to.equal(backendTokens("let me finish", 40).join(""));
      expect(terminal(events)).to.include({ type: "usage", completionTokens: 40 });
      await stopped;
      await waitForSessions(router.hub, (s) => s.length === 0, "the session to close");
      expect(miner.tunnels[0]?.status.state).to.equal("stopped");
    });

    it("follows drain: finishes in-flight work, then reconnects after the hint", async () => {
      const { tunnel, sessionId } = await startMiner();
      backend.configure({ tokens: 30, tokenDelayMs: 5 });
      const inFlight = collect(
        router.hub.dispatch(sessionId, MODEL, chat("finish me"), { deadlineMs: 10_000 }).events,
      );
      await backend.waitForChatRequests(1);
      const stopped = router.drainAndStop();
      const events = await inFlight;
      expect(textOf(events)).to.equal(backendTokens("finish me", 30).join(""));
      expect(terminal(events)).to.include({ type: "usage", completionTokens: 30 });
      await stopped;
      await router.start();
      const status = await tunnel.waitFor((s) => s.state === "connected" && s.connects === 2);
      expect(status.sessionId).not.to.equal(sessionId);
    });
  });
}

describe("tunnel suite: gRPC blocked", () => {
  let router: MinerTestRouter;
  let backend: OpenAIBackend;
  let blocker: Server | undefined;
  const held: Socket[] = [];
  let miner: Miner | undefined;

  beforeEach(async () => {
    backend = await startOpenAIBackend({ models: [MODEL] });
    router = await startMinerTestRouter();
  });
  afterEach(async () => {
    await miner?.stop();
    miner = undefined;
    for (const s of held.splice(0)) s.destroy();
    if (blocker !== undefined) await new Promise<void>((r) => blocker?.close(() => r()));
    blocker = undefined;
    await router.close();
    await backend.close();
  });

  async function autoMiner(grpcPort: number) {
    const hotkey = await throwawayHotkey();
    const routers = [`grpc://127.0.0.1:${grpcPort}`, router.wsUrl];
    miner = new Miner(
      { ...settings(routers, "auto", backend.url), connectTimeoutMs: 500 },
      { hotkey, routerPins: new MemoryRouterPins(), backoff: FAST_BACKOFF },
    );
    await miner.start();
    const tunnel = miner.tunnels[0];
    if (tunnel === undefined) throw new Error("no tunnel");
    const status = await tunnel.waitFor((s) => s.state === "connected");
    expect(status.transport).to.equal("ws");
    const events = await collect(
      router.hub.dispatch(status.sessionId as string, MODEL, chat("over ws"), { deadlineMs: 5000 }).events,
    );
    expect(terminal(events)).to.include({ type: "usage", completionTokens: 8 });
    expect(sessionOf(router.hub, status.sessionId as string).transport).to.equal("ws");
  }

  it("auto ends up on WSS when the gRPC port refuses connections", async () => {
    await autoMiner(await freePort());
  });

  it("auto ends up on WSS when the gRPC port is a TCP server that never speaks HTTP/2", async () => {
    blocker = createServer((s) => {
      held.push(s);
      s.on("error", () => {});
    });
    blocker.listen(0, "127.0.0.1");
    await once(blocker, "listening");
    const address = blocker.address();
    await autoMiner(typeof address === "object" && address !== null ? address.port : 0);
    expect(held.length).to.be.greaterThan(0);
  });
});
