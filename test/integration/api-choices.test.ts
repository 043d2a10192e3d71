import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI, { APIError } from "openai";
import { DEFAULT_ENCODING, Encodings } from "../../common/tokens/encodings.js";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { UNLIMITED_RESERVE_TOKENS } from "../../router/api/chat-ceiling.js";
import { type ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import {
  backendLogprobs,
  backendTokens,
  choiceText,
  type OpenAIBackend,
  startOpenAIBackend,
} from "../support/openai-backend.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { FakeMiner, type RequestPlan } from "../support/tunnel-fake-miner.js";

const MODEL = "test-model";

describe("api choices and limits: openai client → router → real miner → HTTP backend", function () {
  this.timeout(30_000);
  let dir: string;
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;
  let client: OpenAI;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-api-choices-"));
    router = await startRouter({
      keyStore: new FileApiKeyStore(join(dir, "keys.json")),
      chat: { requestTimeoutMs: 10_000 },
    });
    const none = { requestsPerMinute: 0, tokensPerMinute: 0 };
    const key = (await (router.keys as ApiKeys).create("choices", none, Date.now())).key;
    client = new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 });
    backend = await startOpenAIBackend({ models: [MODEL] });
    miner = await startMiner(router, backend.url);
  });
  after(async () => {
    await miner?.kill();
    await router?.close();
    await backend?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const lastBody = () => backend.chatRequests().at(-1)?.body as Record<string, unknown>;

  it("n: 2 non-streaming: two choices, each its own answer and finish reason; usage counts both", async () => {
    const prompt = "two answers please";
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
      n: 2,
      max_tokens: 6,
    });
    expect(lastBody()).to.include({ n: 2, max_tokens: 6 });
    expect(r.choices.map((c) => [c.index, c.message.content, c.finish_reason])).to.deep.equal([
      [0, backendTokens(choiceText(prompt, 0), 6).join(""), "length"],
      [1, backendTokens(choiceText(prompt, 1), 6).join(""), "length"],
    ]);
    // 6 one-token pieces per choice, as the backend reported and the router counted.
    expect(r.usage?.completion_tokens).to.equal(12);
  });

  it("n: 2 streaming: chunks say their choice, each choice starts with the role and ends with a reason", async () => {
    const prompt = "[[backend fp=fp_stream42]] stream two";
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const texts = ["", ""];
    const roles = [0, 0];
    const finishes: (string | null)[] = [null, null];
    const fingerprints = new Set<string | null | undefined>();
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      fingerprints.add(c.system_fingerprint);
      usage = c.usage ?? usage;
      for (const ch of c.choices) {
        texts[ch.index] += ch.delta.content ?? "";
        if (ch.delta.role === "assistant") roles[ch.index] = (roles[ch.index] ?? 0) + 1;
        if (ch.finish_reason !== null) finishes[ch.index] = ch.finish_reason;
      }
    }
    expect(texts).to.deep.equal([
      backendTokens(choiceText(prompt, 0), 8).join(""),
      backendTokens(choiceText(prompt, 1), 8).join(""),
    ]);
    expect(roles).to.deep.equal([1, 1]);
    expect(finishes).to.deep.equal(["stop", "stop"]);
    // The first chunk the miner relays already carries it: no chunk shows another value.
    expect([...fingerprints]).to.deep.equal(["fp_stream42"]);
    expect(usage?.completion_tokens).to.equal(16);
  });

  it("logprobs with n: 2: each choice carries its own tokens' logprobs", async () => {
    const prompt = "weigh two answers";
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
      n: 2,
      logprobs: true,
      top_logprobs: 2,
    });
    for (const c of [0, 1]) {
      expect(r.choices[c]?.logprobs).to.deep.equal({
        content: backendLogprobs(choiceText(prompt, c), 8, 2),
        refusal: null,
      });
    }
  });

  it("max_completion_tokens reaches the backend unchanged, and no limit is injected when none is sent", async () => {
    await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "reasoning model style" }],
      max_completion_tokens: 5,
    });
    expect(lastBody()).to.include({ max_completion_tokens: 5 });
    expect(lastBody()).not.to.have.property("max_tokens");
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "no limit at all" }],
    });
    expect(lastBody()).not.to.have.any.keys("max_tokens", "max_completion_tokens", "n");
    expect(r.choices).to.have.length(1);
  });

  it("system_fingerprint end to end; one longer than 128 bytes is not relayed", async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "[[backend fp=fp_0a1b2c]] hello" }],
    });
    expect(r.system_fingerprint).to.equal("fp_0a1b2c");
    const long = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: `[[backend fp=${"f".repeat(129)}]] hello` }],
    });
    expect(long.system_fingerprint).to.equal(null);
    expect(long.choices[0]?.message.content).to.equal(
      backendTokens(`[[backend fp=${"f".repeat(129)}]] hello`, 8).join(""),
    );
  });

  it("a --tpm 1000 key serves 3 concurrent requests without max_tokens (a documented estimate is reserved)", async () => {
    const limits = { requestsPerMinute: 0, tokensPerMinute: 1000 };
    const key = (await (router.keys as ApiKeys).create("tpm1000", limits, Date.now())).key;
    expect(3 * UNLIMITED_RESERVE_TOKENS).to.be.below(1000);
    const c = new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 });
    const results = await Promise.all(
      [0, 1, 2].map((i) =>
        c.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: `short ${i}` }] }),
      ),
    );
    for (const r of results) expect(r.choices[0]?.message.content).to.have.length.above(0);
    // Settled to what they used: the bucket has room for more of the same.
    const again = await c.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "and one more" }],
    });
    expect(again.choices).to.have.length(1);
  });
});

describe("api choices: a hostile miner's choices are checked and bounded", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  let tunnel: RawTunnelClient;
  let fake: FakeMiner;
  let plan: RequestPlan;
  let client: OpenAI;
  let count: (t: string) => number;

  before(async () => {
    count = await new Encodings().load(DEFAULT_ENCODING);
  });
  beforeEach(async () => {
    router = await startRouter({ chat: { requestTimeoutMs: 8000, maxAttempts: 1 } });
    client = new OpenAI({ apiKey: "none", baseURL: router.baseURL, maxRetries: 0 });
    const hotkey = await throwawayHotkey();
    tunnel = await RawTunnelClient.open("grpc", { grpc: router.grpcUrl.slice("grpc://".length), ws: "" });
    await tunnel.handshake(hotkey, {
      models: [{ id: MODEL, maxConcurrency: 4, contextLength: 0, kinds: [] }],
    });
    fake = new FakeMiner(tunnel, { plan: () => plan });
    await waitForSessions(router.hub, (s) => s.some((x) => x.hotkey === hotkey.address), "the miner");
  });
  afterEach(async () => {
    tunnel.destroy();
    await router.close();
  });

  it("a chunk for a choice the request did not ask for fails it, and earns nothing", async () => {
    plan = { chunks: ["fine", " extra"], choiceIndexes: [0, 2], end: { usage: [5, 500] } };
    const before = router.usage.events.length;
    let caught: unknown;
    try {
      await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: "two please" }],
        n: 2,
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(APIError);
    expect((caught as APIError).status).to.equal(502);
    expect(fake.requests[0]?.chat?.n).to.equal(2);
    await fake.until(() => fake.cancels.length === 1);
    const ev = (await router.usage.waitFor(before + 1)).at(-1);
    expect(ev).to.include({ outcome: "failed", promptTokens: 0, completionTokens: 0 });
  });

  it("a choice running past max_tokens is credited the ceiling + 1, the other choice in full", async () => {
    const long = Array.from({ length: 40 }, () => " word");
    const short = [" yes", " no"];
    plan = {
      chunks: [...long, ...short],
      choiceIndexes: [...long.map(() => 0), ...short.map(() => 1)],
      finishReason: FinishReason.FINISH_REASON_STOP,
      end: { usage: [5, 10_000] },
      fingerprint: "fp_hostile",
    };
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "be brief" }],
      n: 2,
      max_tokens: 3,
    });
    expect(r.system_fingerprint).to.equal("fp_hostile");
    expect(r.choices.map((c) => c.message.content)).to.deep.equal([long.join(""), short.join("")]);
    const credited = 3 + 1 + (count(short.join("")) + 1);
    expect(r.usage?.completion_tokens).to.equal(credited);
    const ev = (await router.usage.waitFor(1)).at(-1);
    expect(ev).to.include({ outcome: "completed", completionTokens: credited });
  });
});
