// OpenAI/OpenRouter parity as a developer meets it: the official openai client against the real
// `tensorclaw dev` network (a router, two demo miners, a validator, as child processes).
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI, { APIError } from "openai";
import { DEMO_EMBEDDING_MODEL_ID, DEMO_MODEL_ID } from "../../miner/backend/demo.js";
import { ProcessSet } from "../support/loop-process.js";

describe("tensorclaw dev: OpenAI and OpenRouter parity with the official client", function () {
  this.timeout(90_000);
  const procs = new ProcessSet();
  let dir: string;
  let client: OpenAI;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-dev-parity-"));
    const dev = procs.spawn(
      "dev",
      ["dev", "--http-port", "0", "--grpc-port", "0", "--data-dir", dir, "--miners", "2"],
      { REDIS_URL: undefined },
    );
    const m = await dev.waitFor(
      /OpenAI API\s+(http:\/\/127\.0\.0\.1:\d+\/v1)\s+API key:\s+(\S+)/,
      60_000,
      "stdout",
    );
    const [, baseURL, apiKey] = m as unknown as [string, string, string];
    client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 10_000 });
  });
  after(async () => {
    await procs.killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it("chat with n: 2 and logprobs, and OpenAI's rate-limit headers on the answer", async () => {
    const { data, response } = await client.chat.completions
      .create({
        model: DEMO_MODEL_ID,
        messages: [{ role: "user", content: "Tell me about bread." }],
        n: 2,
        max_tokens: 8,
        logprobs: true,
        top_logprobs: 2,
      })
      .withResponse();
    expect(data.choices.map((c) => c.index)).to.deep.equal([0, 1]);
    for (const c of data.choices) {
      expect(c.message.content ?? "").to.not.equal("");
      const lp = c.logprobs?.content ?? [];
      expect(lp.length).to.be.within(1, 8);
      expect(lp[0]?.top_logprobs.length).to.equal(2);
    }
    expect(data.usage?.completion_tokens).to.be.greaterThan(0);
    expect(response.headers.get("x-ratelimit-limit-requests")).to.equal("60");
    expect(Number(response.headers.get("x-ratelimit-remaining-requests"))).to.be.below(60);
    expect(response.headers.get("x-ratelimit-limit-tokens")).to.equal("100000");
    expect(response.headers.get("x-request-id")).to.match(/^[0-9a-f]{32}$/);
  });

  it("text completions and embeddings", async () => {
    const c = await client.completions.create({
      model: DEMO_MODEL_ID,
      prompt: "Once upon a time",
      max_tokens: 4,
    });
    expect(c.choices[0]?.text ?? "").to.not.equal("");
    const e = await client.embeddings.create({ model: DEMO_EMBEDDING_MODEL_ID, input: "bread" });
    expect(e.data[0]?.embedding.length).to.equal(256);
  });

  it("OpenRouter's `models` fallback: the answer names the model that served", async () => {
    const r = await client.chat.completions.create({
      model: "no-such-model",
      models: ["no-such-model", DEMO_MODEL_ID],
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 4,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(r.model).to.equal(DEMO_MODEL_ID);
    expect(r.choices[0]?.message.content ?? "").to.not.equal("");
  });

  it("a backend's 400 arrives with its status and its own message", async () => {
    let err: unknown;
    try {
      await client.chat.completions.create({
        model: DEMO_MODEL_ID,
        messages: [{ role: "user", content: "bread ".repeat(20_000) }],
      });
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(APIError);
    const e = err as APIError;
    expect(e.status).to.equal(400);
    expect(e.message).to.match(/the prompt has \d+ tokens; tensorclaw-demo holds \d+/);
  });
});
