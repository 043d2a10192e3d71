import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Redis } from "ioredis";
import OpenAI, { type APIError } from "openai";
import { type ApiKeys, FileApiKeyStore, RedisApiKeyStore } from "../../router/api/keys.js";
import { RedisRateLimiter } from "../../router/api/rate-limiter.js";
import { apiError } from "../support/api-error.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { backendTokens, type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";
import { pollUntil } from "../support/poll.js";
import { randomPrefix, startRedis, type TestRedis } from "../support/redis.js";

const MODEL = "test-model";

/** Streams a raw SSE response to its end and returns the whole text. */
async function rawStream(r: RouterUnderTest, key: string, body: unknown, onText?: (all: string) => void) {
  const res = await fetch(`${r.baseURL}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  let text = "";
  const dec = new TextDecoder();
  for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
    text += dec.decode(part, { stream: true });
    onText?.(text);
  }
  return { res, text };
}

describe("api e2e: openai client → router → tunnel → real miner → backend", function () {
  this.timeout(30_000);
  let dir: string;
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;
  let key: string;
  let client: OpenAI;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-api-e2e-"));
    router = await startRouter({
      keyStore: new FileApiKeyStore(join(dir, "keys.json")),
      chat: { requestTimeoutMs: 5000, keepAliveMs: 40 },
    });
    key = (
      await (router.keys as ApiKeys).create("e2e", { requestsPerMinute: 0, tokensPerMinute: 0 }, Date.now())
    ).key;
    client = new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 });
    backend = await startOpenAIBackend({ models: [MODEL], contextLength: 8192 });
    miner = await startMiner(router, backend.url, { maxConcurrency: 16, contextLength: 8192 });
  });
  after(async () => {
    await miner?.kill();
    await router?.close();
    await backend?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("non-streaming: the answer, usage, served model and x-request-id; one usage event", async () => {
    const before = router.usage.events.length;
    const { data, response } = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "hello there" }] })
      .withResponse();
    expect(data.object).to.equal("chat.completion");
    expect(data.model).to.equal(MODEL);
    expect(data.choices[0]?.message.content).to.equal(backendTokens("hello there", 8).join(""));
    expect(data.choices[0]?.finish_reason).to.equal("stop");
    const rec = backend.chatRequests().at(-1);
    expect(data.usage).to.deep.equal({
      prompt_tokens: rec?.promptTokens,
      completion_tokens: 8,
      total_tokens: (rec?.promptTokens ?? 0) + 8,
    });
    const requestId = response.headers.get("x-request-id");
    expect(requestId).to.be.a("string");
    const events = await router.usage.waitFor(before + 1);
    const ev = events.at(-1);
    expect(ev).to.include({
      requestId,
      minerHotkey: miner.hotkey,
      model: MODEL,
      completionTokens: 8,
      promptTokens: rec?.promptTokens,
      outcome: "completed",
    });
    // The caller's `user` never reaches the backend.
    await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "x" }],
      user: "alice",
    });
    const sent = backend.chatRequests().at(-1)?.body as { user?: string };
    expect(sent.user).to.match(/^u_[0-9a-f]{32}$/);
  });

  it("streaming with include_usage: usage null on chunks, a final usage chunk with choices []", async () => {
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "stream please [[backend tokens=12]]" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const c of stream) {
      chunks.push(c);
      text += c.choices[0]?.delta.content ?? "";
    }
    expect(text).to.equal(backendTokens("stream please [[backend tokens=12]]", 12).join(""));
    const last = chunks.at(-1);
    expect(last?.choices).to.deep.equal([]);
    expect(last?.usage?.completion_tokens).to.equal(12);
    for (const c of chunks.slice(0, -1)) expect(c.usage).to.equal(null);
    expect(chunks.some((c) => c.choices[0]?.finish_reason === "stop")).to.equal(true);
    expect(chunks.every((c) => c.model === MODEL)).to.equal(true);
    expect(chunks[0]?.choices[0]?.delta.role).to.equal("assistant");
  });

  it("tool calls: streamed deltas reassemble into valid arguments; non-streaming too", async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: "function", function: { name: "lookup", parameters: { type: "object" } } },
    ];
    const messages = [{ role: "user" as const, content: "call it" }];
    const stream = await client.chat.completions.create({ model: MODEL, messages, tools, stream: true });
    const args = new Map<number, string>();
    let name = "";
    let finish: string | null = null;
    let deltas = 0;
    for await (const c of stream) {
      const ch = c.choices[0];
      for (const tc of ch?.delta.tool_calls ?? []) {
        deltas++;
        if (tc.function?.name) name = tc.function.name;
        args.set(tc.index, (args.get(tc.index) ?? "") + (tc.function?.arguments ?? ""));
      }
      finish = ch?.finish_reason ?? finish;
    }
    expect(name).to.equal("lookup");
    expect(deltas).to.be.greaterThan(2);
    expect(finish).to.equal("tool_calls");
    expect(JSON.parse(args.get(0) ?? "")).to.deep.equal({ text: backendTokens("call it", 8).join("") });
    const unary = await client.chat.completions.create({ model: MODEL, messages, tools });
    const call = unary.choices[0]?.message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(unary.choices[0]?.finish_reason).to.equal("tool_calls");
    expect(call.function.name).to.equal("lookup");
    expect(JSON.parse(call.function.arguments)).to.deep.equal({ text: backendTokens("call it", 8).join("") });
  });

  it("lists the model with its miners and context length", async () => {
    const page = await client.models.list();
    const m = page.data.find((x) => x.id === MODEL) as unknown as Record<string, unknown>;
    expect(m).to.include({
      id: MODEL,
      object: "model",
      owned_by: "tensorclaw",
      miners: 1,
      context_length: 8192,
    });
  });

  it("aborting a stream mid-way cancels the backend's work and records a cancelled usage event", async () => {
    const before = router.usage.events.length;
    const ac = new AbortController();
    const stream = await client.chat.completions.create(
      {
        model: MODEL,
        messages: [{ role: "user", content: "long one [[backend tokens=200 delay=20]]" }],
        stream: true,
      },
      { signal: ac.signal },
    );
    let seen = 0;
    try {
      for await (const _ of stream) {
        if (++seen === 3) ac.abort();
      }
    } catch {
      // The client reports the abort; what matters is what the backend saw.
    }
    const rec = await backend.waitForAbort((r) => JSON.stringify(r.body).includes("long one"));
    expect(rec.completionTokens).to.be.lessThan(200);
    const ev = (await router.usage.waitFor(before + 1)).at(-1);
    expect(ev?.outcome).to.equal("cancelled");
    expect(ev?.completionTokens).to.be.greaterThan(0).and.lessThan(200);
  });

  it("a client that stops reading stalls only its own stream, back to the backend", async () => {
    const { request } = await import("node:http");
    const url = new URL(`${router.baseURL}/chat/completions`);
    const body = JSON.stringify({
      model: MODEL,
      messages: [{ role: "user", content: "firehose [[backend tokens=60000]]" }],
      max_tokens: 100_000,
      stream: true,
    });
    const req = request({
      host: url.hostname,
      port: url.port,
      path: url.pathname,
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    });
    req.end(body);
    const [res] = (await once(req, "response")) as [import("node:http").IncomingMessage];
    res.pause();
    const rec = (await backend.waitForChatRequests(backend.chatRequests().length)).at(-1) as {
      completionTokens: number;
      body: unknown;
    };
    expect(JSON.stringify(rec.body)).to.contain("firehose");
    // Wait for the backend to stall: its writes block once the router stops reading this
    // request's events and the miner (a child process) runs out of credit. No event marks
    // "no progress", so this polls until a 300 ms interval shows none.
    let last = -1;
    await pollUntil(
      () => {
        const stalled = rec.completionTokens === last;
        last = rec.completionTokens;
        return stalled;
      },
      { what: "the firehose backend to stall", timeoutMs: 15_000, intervalMs: 300 },
    );
    expect(rec.completionTokens).to.be.lessThan(60_000);
    // The shared tunnel still serves others at full speed.
    const other = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "meanwhile" }],
    });
    expect(other.choices[0]?.message.content).to.equal(backendTokens("meanwhile", 8).join(""));
    res.destroy();

    await backend.waitForAbort((r) => JSON.stringify(r.body).includes("firehose"));
  });

  it("sends SSE keep-alive comments while the first token is slow", async () => {
    const { res, text } = await rawStream(router, key, {
      model: MODEL,
      messages: [{ role: "user", content: "slow [[backend tokens=2 delay=300]]" }],
      stream: true,
    });
    const firstData = text.indexOf("data:");
    expect(res.headers.get("x-request-id")).to.match(/^[0-9a-f]{32}$/);
    expect(res.headers.get("content-type")).to.contain("text/event-stream");
    expect(text.slice(0, firstData)).to.contain(": keep-alive\n\n");
    expect(text.trimEnd().endsWith("data: [DONE]")).to.equal(true);
  });

  it("upstream error: 502 with an OpenAI error body", async () => {
    const e = await apiError(
      client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "[[backend fault=http500]]" }],
      }),
    );
    expect(e.status).to.equal(502);
    expect(e.type).to.equal("api_error");
    expect((e.error as { code: string }).code).to.equal("upstream_error");
  });

  it("every miner overloaded (backend 429): 503 with retry-after, not 502", async () => {
    const e = await apiError(
      client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "[[backend fault=http429]]" }],
      }),
    );
    expect(e.status).to.equal(503);
    expect(Number(e.headers?.get("retry-after"))).to.be.greaterThan(0);
  });

  it("miner timeout: 504, and the backend sees the cancel", async () => {
    const r2 = await startRouter({ chat: { requestTimeoutMs: 400 } });
    const m2 = await startMiner(r2, backend.url);
    try {
      const c2 = new OpenAI({ apiKey: "none", baseURL: r2.baseURL, maxRetries: 0 });
      const e = await apiError(
        c2.chat.completions.create({
          model: MODEL,
          messages: [{ role: "user", content: "t/o [[backend fault=hang]]" }],
        }),
      );
      expect(e.status).to.equal(504);
      expect((e.error as { code: string }).code).to.equal("upstream_timeout");
      await backend.waitForAbort((r) => JSON.stringify(r.body).includes("t/o"));
    } finally {
      await m2.kill();
      await r2.close();
    }
  });

  it("no active miner for a known model: 503 with retry-after", async () => {
    router.hub.setGhost(miner.hotkey, true);
    try {
      const e = await apiError(
        client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }] }),
      );
      expect(e.status).to.equal(503);
      expect(Number(e.headers?.get("retry-after"))).to.be.greaterThan(0);
      expect((e.error as { code: string }).code).to.equal("no_capacity");
      expect((await client.models.list()).data).to.deep.equal([]);
    } finally {
      router.hub.setGhost(miner.hotkey, false);
    }
  });

  it("exports request, TTFT, token and miner metrics", async () => {
    const text = await router.registry.metrics();
    expect(text).to.match(/tensorclaw_api_requests_total\{model="test-model",status="200"\} [1-9]/);
    expect(text).to.match(/tensorclaw_api_time_to_first_token_seconds_count\{model="test-model"\} [1-9]/);
    expect(text).to.match(/tensorclaw_api_tokens_total\{model="test-model",kind="completion"\} [1-9]/);
    expect(text).to.contain('tensorclaw_miners{state="active"} 1');
    expect(text).to.contain("tensorclaw_api_in_flight_requests 0");
  });

  it("serves through a miner on the WebSocket tunnel that shares the API's HTTP port", async () => {
    const wsMiner = await startMiner(router, backend.url, { transport: "ws" });
    try {
      const s = router.hub.sessions().find((x) => x.hotkey === wsMiner.hotkey);
      expect(s?.transport).to.equal("ws");
      router.hub.setGhost(miner.hotkey, true);
      const r = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "via ws" }],
      });
      expect(r.choices[0]?.message.content).to.equal(backendTokens("via ws", 8).join(""));
      expect(router.usage.events.at(-1)?.minerHotkey).to.equal(wsMiner.hotkey);
    } finally {
      router.hub.setGhost(miner.hotkey, false);
      await wsMiner.kill();
    }
  });

  it("bad input never reaches the miner", async () => {
    const before = backend.chatRequests().length;
    const e = await apiError(
      client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }], top_p: 3 }),
    );
    expect(e.status).to.equal(400);
    expect(e.param).to.equal("top_p");
    expect(backend.chatRequests().length).to.equal(before);
  });
});

describe("api e2e: failover and miner death", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  let good: OpenAIBackend;
  let stuck: OpenAIBackend;
  let client: OpenAI;
  const miners: MinerProcess[] = [];

  beforeEach(async () => {
    router = await startRouter({ chat: { requestTimeoutMs: 8000, keepAliveMs: 0 } });
    client = new OpenAI({ apiKey: "none", baseURL: router.baseURL, maxRetries: 0 });
    good = await startOpenAIBackend({ models: [MODEL] });
    stuck = await startOpenAIBackend({ models: [MODEL], fault: "hang" });
  });
  afterEach(async () => {
    for (const m of miners.splice(0)) await m.kill();
    await router.close();
    await good.close();
    await stuck.close();
  });

  it("a miner that dies before the first token is replaced by another, invisibly", async () => {
    const dying = await startMiner(router, stuck.url);
    const healthy = await startMiner(router, good.url);
    miners.push(dying, healthy);
    const asks = Array.from({ length: 6 }, (_, i) =>
      client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: `q${i}` }],
        stream: i % 2 === 0,
      }),
    );
    // Some requests are now stuck on the dying miner's backend.
    await stuck.waitForChatRequests(1);
    await dying.kill();
    const answers = await Promise.all(
      asks.map(async (p, i) => {
        const r = await p;
        if (i % 2 === 1) return (r as OpenAI.ChatCompletion).choices[0]?.message.content ?? "";
        let t = "";
        for await (const c of r as AsyncIterable<OpenAI.ChatCompletionChunk>)
          t += c.choices[0]?.delta.content ?? "";
        return t;
      }),
    );
    for (const [i, a] of answers.entries()) expect(a).to.equal(backendTokens(`q${i}`, 8).join(""));
    const events = await router.usage.waitUntil(
      (es) => es.filter((e) => e.outcome === "completed").length >= 6,
    );
    const served = events.filter((e) => e.outcome === "completed");
    expect(served.length).to.equal(6);
    expect(served.every((e) => e.minerHotkey === healthy.hotkey)).to.equal(true);
    // Failures of the dying miner earn nothing and count against its success rate.
    for (const e of events.filter((x) => x.outcome !== "completed")) {
      expect(e).to.include({ outcome: "failed_early", promptTokens: 0, completionTokens: 0 });
      expect(e.minerHotkey).to.not.equal(healthy.hotkey);
    }
    expect(await router.registry.getSingleMetricAsString("tensorclaw_api_failovers_total")).to.match(
      /failovers_total\{model="test-model"\} [1-9]/,
    );
  });

  it("a miner dying mid-stream ends the stream with an error event and no [DONE]", async () => {
    good.configure({ tokens: 400, tokenDelayMs: 10 });
    const only = await startMiner(router, good.url);
    miners.push(only);
    let killed: Promise<void> | undefined;
    const { res, text } = await rawStream(
      router,
      "none",
      { model: MODEL, messages: [{ role: "user", content: "die" }], stream: true },
      (all) => {
        if (killed === undefined && all.split("data: ").length > 4) killed = only.kill();
      },
    );
    await killed;
    expect(res.status).to.equal(200);
    const events = text.split("\n\n").filter((l) => l.startsWith("data: "));
    const last = JSON.parse((events.at(-1) as string).slice(6)) as { error: { code: string; type: string } };
    expect(last.error.type).to.equal("api_error");
    expect(["upstream_error", "upstream_timeout"]).to.include(last.error.code);
    expect(text).not.to.contain("[DONE]");
    // Undelivered work earns nothing: the miner that broke the stream is credited no tokens,
    // and the failure counts against its success rate.
    const [ev] = await router.usage.waitFor(1);
    expect(ev).to.include({
      minerHotkey: only.hotkey,
      promptTokens: 0,
      completionTokens: 0,
      outcome: "failed",
    });
    // The openai client surfaces it as an error, not a short answer.
    const m2 = await startMiner(router, good.url);
    miners.push(m2);
    await waitForSessions(router.hub, (s) => s.length === 1, "the dead miner's session to close");
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "die again" }],
      stream: true,
    });
    let n = 0;
    const failed = await apiError(
      (async () => {
        for await (const _ of stream) if (++n === 3) void m2.kill();
      })(),
    );
    expect(failed.message).to.match(/miner|upstream|time/i);
    const recorded = await router.usage.waitFor(2);
    expect(recorded.every((e) => e.promptTokens === 0 && e.completionTokens === 0)).to.equal(true);
  });
});

describe("api e2e: per-key limits under 50 concurrent requests (keys and limits in Redis)", function () {
  this.timeout(30_000);
  let redis: TestRedis;
  let client: Redis;
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;

  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
    const prefix = randomPrefix();
    router = await startRouter({
      keyStore: new RedisApiKeyStore(client, prefix),
      limiter: new RedisRateLimiter(client, prefix),
    });
    backend = await startOpenAIBackend({ models: [MODEL], tokens: 4 });
    miner = await startMiner(router, backend.url, { maxConcurrency: 64 });
  });
  after(async () => {
    await miner.kill();
    await router.close();
    await backend.close();
    await client.quit();
    await redis.stop();
  });

  it("requests per minute: exactly the allowance passes, the rest get 429 with retry-after", async () => {
    const key = (
      await (router.keys as ApiKeys).create("rpm", { requestsPerMinute: 20, tokensPerMinute: 0 }, Date.now())
    ).key;
    const c = new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 });
    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        c.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: `r${i}` }] }),
      ),
    );
    const ok = results.filter((r) => r.status === "fulfilled");
    const refused = results.filter((r) => r.status === "rejected").map((r) => r.reason as APIError);
    expect(ok).to.have.length(20);
    expect(refused).to.have.length(30);
    for (const e of refused) {
      expect(e.status).to.equal(429);
      expect(Number(e.headers?.get("retry-after"))).to.be.greaterThan(0);
      expect(e.type).to.equal("rate_limit_error");
    }
  });

  it("tokens per minute: reservations hold under concurrency, then unused tokens come back", async () => {
    // Each request reserves its prompt estimate + max_tokens (100), so at most 10 fit in 1100 tokens.
    const key = (
      await (router.keys as ApiKeys).create(
        "tpm",
        { requestsPerMinute: 0, tokensPerMinute: 1100 },
        Date.now(),
      )
    ).key;
    const c = new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 });
    const ask = (i: number) =>
      c.chat.completions.create({
        model: MODEL,
        max_tokens: 100,
        messages: [{ role: "user", content: `t${i}` }],
      });
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, i) => ask(i)));
    const ok = results.filter((r) => r.status === "fulfilled").length;
    expect(ok).to.be.within(9, 10);
    for (const r of results) if (r.status === "rejected") expect((r.reason as APIError).status).to.equal(429);
    // Each used ~4 completion + a few prompt tokens of its 100+ reserved: the refund makes room again.
    const again = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => ask(100 + i)));
    expect(again.filter((r) => r.status === "fulfilled").length).to.be.greaterThan(3);
  });
});
