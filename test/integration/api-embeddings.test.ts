import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI from "openai";
import { type ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { apiError } from "../support/api-error.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import {
  backendEmbedding,
  backendEmbeddingTokens,
  type OpenAIBackend,
  startOpenAIBackend,
} from "../support/openai-backend.js";

const CHAT = "chat-model";
const EMBED = "embed-model";

/** float32 rounding, as the tunnel carries vectors. */
const f32 = (v: number[]) => Array.from(Float32Array.from(v));

describe("api embeddings: openai client → router → tunnel → real miner → backend /v1/embeddings", function () {
  this.timeout(30_000);
  let dir: string;
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;
  let client: OpenAI;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-api-embed-"));
    router = await startRouter({
      keyStore: new FileApiKeyStore(join(dir, "keys.json")),
      chat: { requestTimeoutMs: 5000 },
    });
    const key = (
      await (router.keys as ApiKeys).create("e2e", { requestsPerMinute: 0, tokensPerMinute: 0 }, Date.now())
    ).key;
    client = new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 });
    backend = await startOpenAIBackend({ models: [CHAT, EMBED] });
    miner = await startMiner(router, backend.url, { extraArgs: ["--embedding-models", EMBED] });
  });
  after(async () => {
    await miner?.kill();
    await router?.close();
    await backend?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("the miner offers the embedding model for embeddings only and the chat model for chat only", () => {
    const models = router.hub.sessions().find((s) => s.hotkey === miner.hotkey)?.models ?? [];
    expect(models.map((m) => [m.id, m.kinds])).to.deep.equal([
      [CHAT, ["chat"]],
      [EMBED, ["embedding"]],
    ]);
  });

  it("the client's default (base64) is decoded to the backend's vectors; usage credits prompt tokens only", async () => {
    const before = router.usage.events.length;
    const input = ["hello world", "a longer piece of text to embed"];
    const { data, response } = await client.embeddings.create({ model: EMBED, input }).withResponse();
    expect(data.object).to.equal("list");
    expect(data.model).to.equal(EMBED);
    expect(data.data.map((d) => d.index)).to.deep.equal([0, 1]);
    expect(data.data.map((d) => d.embedding)).to.deep.equal(input.map((s) => f32(backendEmbedding(s))));
    const tokens = backendEmbeddingTokens(input);
    expect(data.usage).to.deep.equal({ prompt_tokens: tokens, total_tokens: tokens });
    const rec = backend.requests.filter((r) => r.path === "/v1/embeddings").at(-1);
    // The miner always asks its backend for floats, whatever the user asked.
    expect(rec?.body).to.deep.equal({ model: EMBED, input, encoding_format: "float" });
    const events = await router.usage.waitFor(before + 1);
    expect(events.at(-1)).to.include({
      requestId: response.headers.get("x-request-id"),
      minerHotkey: miner.hotkey,
      model: EMBED,
      promptTokens: tokens,
      completionTokens: 0,
      outcome: "completed",
    });
  });

  it("float format, one string input, dimensions and user (hashed) reach the backend", async () => {
    const res = await client.embeddings.create({
      model: EMBED,
      input: "just one",
      encoding_format: "float",
      dimensions: 6,
      user: "alice",
    });
    expect(res.data).to.have.length(1);
    expect(res.data[0]?.embedding).to.deep.equal(f32(backendEmbedding("just one", 6)));
    const body = backend.requests.filter((r) => r.path === "/v1/embeddings").at(-1)?.body as Record<
      string,
      unknown
    >;
    expect(body).to.include({ model: EMBED, dimensions: 6, encoding_format: "float" });
    expect(body.input).to.deep.equal(["just one"]);
    expect(body.user).to.match(/^u_[0-9a-f]{32}$/);
  });

  it("also under /api/v1 (OpenRouter's prefix)", async () => {
    const res = await fetch(`${router.baseURL.replace(/\/v1$/, "")}/api/v1/embeddings`, {
      method: "POST",
      headers: { authorization: `Bearer ${client.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: EMBED, input: "via openrouter" }),
    });
    expect(res.status).to.equal(200);
    const body = (await res.json()) as { data: { embedding: number[] }[] };
    expect(body.data[0]?.embedding).to.deep.equal(f32(backendEmbedding("via openrouter")));
  });

  it("bad input is a 400 naming the field; a chat-only model gets no embeddings request", async () => {
    const tokenIds = await apiError(client.embeddings.create({ model: EMBED, input: [[1, 2, 3]] }));
    expect(tokenIds.status).to.equal(400);
    expect(tokenIds.param).to.equal("input");
    const empty = await apiError(client.embeddings.create({ model: EMBED, input: [] }));
    expect([empty.status, empty.param]).to.deep.equal([400, "input"]);
    const tooMany = await apiError(
      client.embeddings.create({ model: EMBED, input: new Array(2049).fill("x") }),
    );
    expect([tooMany.status, tooMany.param]).to.deep.equal([400, "input"]);
    const format = await apiError(
      client.embeddings.create({ model: EMBED, input: "x", encoding_format: "hex" as "float" }),
    );
    expect([format.status, format.param]).to.deep.equal([400, "encoding_format"]);
    const sent = backend.requests.length;
    const chatOnly = await apiError(client.embeddings.create({ model: CHAT, input: "x" }));
    expect(chatOnly.status).to.equal(503);
    expect(backend.requests.length).to.equal(sent);
    // And the embedding model takes no chat.
    const noChat = await apiError(
      client.chat.completions.create({ model: EMBED, messages: [{ role: "user", content: "hi" }] }),
    );
    expect(noChat.status).to.equal(503);
    expect(backend.requests.length).to.equal(sent);
  });
});
