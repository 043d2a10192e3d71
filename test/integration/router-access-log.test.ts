import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI from "openai";
import { ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { ROUTER_DEFAULTS } from "../../router/config.js";
import { type RunningRouter, routerPaths, startRouter } from "../../router/router.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { memoryLogger } from "../support/memory-logger.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { FakeMiner } from "../support/tunnel-fake-miner.js";

const MODEL = "logged-model";
const SECRET_PROMPT = "the prompt text must never reach the log";

interface AccessLine {
  msg: string;
  level: number;
  requestId: string;
  method: string;
  path: string;
  status: number;
  keyId?: string;
  model?: string;
  miner?: string;
  promptTokens?: number;
  completionTokens?: number;
  ttftMs?: number | null;
  app?: { referer?: string; title?: string };
  durationMs: number;
}

describe("router program: access log and metrics", function () {
  this.timeout(30_000);
  let dir: string;
  let router: RunningRouter | undefined;
  let tunnel: RawTunnelClient | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-router-access-"));
  });
  afterEach(async () => {
    tunnel?.destroy();
    await router?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("writes one info line per API request that joins it to its key and miner (no prompt text), and counts it per miner", async () => {
    const keys = new ApiKeys(new FileApiKeyStore(routerPaths(dir).keys));
    const { key, record } = await keys.create(
      "logged",
      { requestsPerMinute: 0, tokensPerMinute: 0 },
      Date.now(),
    );
    const mem = memoryLogger();
    const started = await startRouter(
      { ...ROUTER_DEFAULTS, httpPort: 0, grpcPort: 0, dataDir: dir, openCatalogue: true },
      mem.logger,
    );
    router = started;
    const hotkey = await throwawayHotkey();
    tunnel = await RawTunnelClient.open("grpc", { grpc: `127.0.0.1:${started.grpcPort}`, ws: "" });
    await tunnel.handshake(hotkey, {
      models: [{ id: MODEL, maxConcurrency: 4, contextLength: 0, kinds: [] }],
    });
    new FakeMiner(tunnel);
    await waitForSessions(started.hub, (s) => s.some((x) => x.hotkey === hotkey.address), "the miner");

    const client = new OpenAI({
      apiKey: key,
      baseURL: `http://127.0.0.1:${started.httpPort}/v1`,
      maxRetries: 0,
      // OpenRouter's app attribution: logged (cleaned: no query string, whitespace folded).
      defaultHeaders: { "HTTP-Referer": "https://app.example/page?token=t", "X-Title": " Logged\t app " },
    });
    const { data, response } = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: SECRET_PROMPT }], stream: false })
      .withResponse();
    const id = response.headers.get("x-request-id");
    await fetch(`http://127.0.0.1:${started.httpPort}/healthz`);
    const missing = await fetch(`http://127.0.0.1:${started.httpPort}/v1/nothing`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(missing.status).to.equal(404);

    const lines = mem.lines() as unknown as AccessLine[];
    const access = lines.filter((l) => l.msg === "request");
    const chat = access.filter((l) => l.requestId === id);
    expect(chat).to.have.length(1);
    expect(chat[0]).to.include({
      level: 30,
      method: "POST",
      path: "/v1/chat/completions",
      status: 200,
      keyId: record.id,
      model: MODEL,
      miner: hotkey.address,
      promptTokens: data.usage?.prompt_tokens,
      completionTokens: data.usage?.completion_tokens,
    });
    expect(chat[0]?.app).to.deep.equal({ referer: "https://app.example/page", title: "Logged app" });
    expect(id).to.match(/^[0-9a-f]{32}$/);
    expect(chat[0]?.ttftMs).to.be.a("number");
    expect(chat[0]?.durationMs)
      .to.be.a("number")
      .and.at.least(chat[0]?.ttftMs ?? 0);
    // Health checks stay below info; an unknown path is logged with its status.
    expect(access.filter((l) => l.path === "/healthz")).to.deep.equal([]);
    expect(access.filter((l) => l.path === "/v1/nothing").map((l) => l.status)).to.deep.equal([404]);
    expect(JSON.stringify(lines)).to.not.include(SECRET_PROMPT);

    // The same request in the metrics: its total duration, its miner's attempt and time to first
    // token, and the process's own figures.
    const metrics = await (await fetch(`http://127.0.0.1:${started.httpPort}/metrics`)).text();
    expect(metrics).to.include(
      `tensorclaw_api_request_duration_seconds_count{model="${MODEL}",status="200"} 1`,
    );
    expect(metrics).to.include(
      `tensorclaw_api_miner_attempts_total{hotkey="${hotkey.address}",outcome="served"} 1`,
    );
    expect(metrics).to.include(
      `tensorclaw_api_miner_time_to_first_token_seconds_count{hotkey="${hotkey.address}"} 1`,
    );
    expect(metrics).to.include(`tensorclaw_api_model_in_flight_requests{model="${MODEL}"} 0`);
    expect(metrics).to.match(/^tensorclaw_api_requests_waiting 0$/m);
    expect(metrics).to.match(/^process_cpu_seconds_total \d/m);
    expect(metrics).to.match(/^nodejs_eventloop_lag_p99_seconds \d/m);
  });
});
