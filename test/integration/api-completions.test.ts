import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI from "openai";
import { type ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { apiError } from "../support/api-error.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import {
  backendCompletionPieces,
  type OpenAIBackend,
  startOpenAIBackend,
} from "../support/openai-backend.js";

const MODEL = "text-model";
const CHAT_ONLY = "chat-only";

describe("api completions: openai client → router → tunnel → real miner → backend /v1/completions", function () {
  this.timeout(30_000);
  let dir: string;
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;
  let client: OpenAI;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-api-cmpl-"));
    router = await startRouter({
      keyStore: new FileApiKeyStore(join(dir, "keys.json")),
      chat: { requestTimeoutMs: 5000 },
    });
    const key = (
      await (router.keys as ApiKeys).create("e2e", { requestsPerMinute: 0, tokensPerMinute: 0 }, Date.now())
    ).key;
    client = new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 });
    backend = await startOpenAIBackend({ models: [MODEL, CHAT_ONLY] });
    miner = await startMiner(router, backend.url, { extraArgs: ["--completion-models", MODEL] });
  });
  after(async () => {
    await miner?.kill();
    await router?.close();
    await backend?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const lastBody = () =>
    backend.requests.filter((r) => r.path === "/v1/completions").at(-1)?.body as Record<string, unknown>;

  it("JSON: the choice's text, usage and one usage event; max_tokens absent reaches the backend absent", async () => {
    const before = router.usage.events.length;
    const r = await client.completions.create({ model: MODEL, prompt: "once upon a time" });
    expect(r.object).to.equal("text_completion");
    expect(r.model).to.equal(MODEL);
    expect(r.choices).to.have.length(1);
    expect(r.choices[0]).to.deep.include({
      index: 0,
      text: backendCompletionPieces(0, 0).join(""),
      logprobs: null,
    });
    expect(r.choices[0]?.finish_reason).to.equal("length");
    expect(r.usage).to.deep.equal({ prompt_tokens: 4, completion_tokens: 4, total_tokens: 8 });
    expect(lastBody()).to.deep.equal({ model: MODEL, prompt: "once upon a time", stream: false });
    const events = await router.usage.waitFor(before + 1);
    expect(events.at(-1)).to.include({
      minerHotkey: miner.hotkey,
      model: MODEL,
      promptTokens: 4,
      completionTokens: 4,
    });
  });

  it("n: 2 over two prompts gives four choices indexed prompt × n + sample, with what was sent forwarded", async () => {
    const r = await client.completions.create({
      model: MODEL,
      prompt: ["first prompt", "second one"],
      n: 2,
      max_tokens: 3,
      temperature: 0.5,
      stop: ["\n"],
      seed: 7,
      suffix: "end",
      user: "carol",
    });
    expect(r.choices.map((c) => [c.index, c.text])).to.deep.equal(
      [0, 1, 2, 3].map((i) => [i, backendCompletionPieces(Math.floor(i / 2), i % 2, 3).join("")]),
    );
    expect(r.usage?.completion_tokens).to.equal(12);
    const body = lastBody();
    expect(body).to.deep.include({ n: 2, max_tokens: 3, temperature: 0.5, seed: 7, suffix: "end" });
    expect(body.prompt).to.deep.equal(["first prompt", "second one"]);
    expect(body.stop).to.deep.equal(["\n"]);
    expect(body.user).to.match(/^u_[0-9a-f]{32}$/);
  });

  it("logprobs in the legacy shape: tokens, token_logprobs, top_logprobs maps and text offsets", async () => {
    const r = await client.completions.create({ model: MODEL, prompt: "x", max_tokens: 3, logprobs: 1 });
    const pieces = backendCompletionPieces(0, 0, 3);
    expect(r.choices[0]?.logprobs).to.deep.equal({
      tokens: pieces,
      token_logprobs: [-0.1, -0.2, -0.3],
      top_logprobs: pieces.map((p, i) => ({ [p]: -(i + 1) / 10 })),
      text_offset: [0, pieces[0]?.length, (pieces[0]?.length ?? 0) + (pieces[1]?.length ?? 0)],
    });
  });

  it("stream: text_completion events per choice, usage when asked, [DONE]", async () => {
    const stream = await client.completions.create({
      model: MODEL,
      prompt: "stream me",
      n: 2,
      max_tokens: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const text = ["", ""];
    let usage: unknown;
    for await (const ev of stream) {
      expect(ev.object).to.equal("text_completion");
      for (const c of ev.choices) text[c.index] += c.text;
      if (ev.usage) usage = ev.usage;
    }
    expect(text).to.deep.equal([
      backendCompletionPieces(0, 0, 2).join(""),
      backendCompletionPieces(0, 1, 2).join(""),
    ]);
    expect(usage).to.deep.equal({ prompt_tokens: 2, completion_tokens: 4, total_tokens: 6 });
    expect(lastBody()).to.deep.include({ stream: true, stream_options: { include_usage: true } });
  });

  it("refuses token prompts, best_of other than n, and n over 8 naming the field; a chat-only model gets none", async () => {
    const tokens = await apiError(client.completions.create({ model: MODEL, prompt: [1, 2, 3] }));
    expect([tokens.status, tokens.param]).to.deep.equal([400, "prompt"]);
    const bestOf = await apiError(client.completions.create({ model: MODEL, prompt: "x", best_of: 3 }));
    expect([bestOf.status, bestOf.param]).to.deep.equal([400, "best_of"]);
    const n = await apiError(client.completions.create({ model: MODEL, prompt: "x", n: 9 }));
    expect([n.status, n.param]).to.deep.equal([400, "n"]);
    const lp = await apiError(client.completions.create({ model: MODEL, prompt: "x", logprobs: 6 }));
    expect([lp.status, lp.param]).to.deep.equal([400, "logprobs"]);
    const sent = backend.requests.length;
    const chatOnly = await apiError(client.completions.create({ model: CHAT_ONLY, prompt: "x" }));
    expect(chatOnly.status).to.equal(503);
    expect(backend.requests.length).to.equal(sent);
  });
});
