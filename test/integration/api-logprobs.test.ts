import { expect } from "chai";
import OpenAI from "openai";
import { MAX_LOGPROBS_PER_CHUNK } from "../../common/chunk-logprobs.js";
import { apiError } from "../support/api-error.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import {
  backendLogprobs,
  backendTokens,
  type OpenAIBackend,
  startOpenAIBackend,
} from "../support/openai-backend.js";

const MODEL = "test-model";

describe("api logprobs: openai client → router → tunnel → real miner → backend, and back", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;
  let client: OpenAI;

  before(async () => {
    router = await startRouter({ chat: { requestTimeoutMs: 10_000 } });
    client = new OpenAI({ apiKey: "unused", baseURL: router.baseURL, maxRetries: 0 });
    backend = await startOpenAIBackend({ models: [MODEL] });
    miner = await startMiner(router, backend.url);
  });
  after(async () => {
    await miner?.kill();
    await router?.close();
    await backend?.close();
  });

  it("non-streaming: logprobs.content holds every token with its bytes and the alternatives asked for", async () => {
    const prompt = "weigh every word";
    const data = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
      logprobs: true,
      top_logprobs: 3,
    });
    const sent = backend.chatRequests().at(-1)?.body as Record<string, unknown>;
    expect(sent).to.include({ logprobs: true, top_logprobs: 3, stream: false });
    const choice = data.choices[0];
    expect(choice?.message.content).to.equal(backendTokens(prompt, 8).join(""));
    expect(choice?.logprobs).to.deep.equal({ content: backendLogprobs(prompt, 8, 3), refusal: null });
    // Logprob tokens are not answer tokens: the credited count is the answer's alone.
    expect(data.usage?.completion_tokens).to.equal(8);
  });

  it("streaming: each chunk carries the logprobs of its own text, and together they are the backend's", async () => {
    const prompt = "stream the odds [[backend tokens=12]]";
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
      stream: true,
      logprobs: true,
      top_logprobs: 2,
    });
    const seen: OpenAI.ChatCompletionTokenLogprob[] = [];
    let text = "";
    for await (const c of stream) {
      const choice = c.choices[0];
      const content = choice?.delta.content ?? "";
      text += content;
      const items = choice?.logprobs?.content ?? null;
      if (content === "") {
        expect(choice?.logprobs, "a chunk without text").to.equal(null);
        continue;
      }
      expect(items?.map((t) => t.token).join(""), "a chunk's tokens spell its text").to.equal(content);
      expect(choice?.logprobs?.refusal).to.equal(null);
      seen.push(...(items ?? []));
    }
    expect(text).to.equal(backendTokens(prompt, 12).join(""));
    expect(seen).to.deep.equal(backendLogprobs(prompt, 12, 2));
    const sent = backend.chatRequests().at(-1)?.body as Record<string, unknown>;
    expect(sent).to.include({ logprobs: true, top_logprobs: 2, stream: true });
  });

  it("without logprobs: null on the completion and on every chunk, and the backend is not asked", async () => {
    const unary = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "no odds" }],
    });
    expect(unary.choices[0]?.logprobs).to.equal(null);
    expect(backend.chatRequests().at(-1)?.body).not.to.have.property("logprobs");
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "no odds streamed" }],
      stream: true,
      logprobs: false,
    });
    let chunks = 0;
    for await (const c of stream) {
      chunks++;
      expect(c.choices[0]?.logprobs).to.equal(null);
    }
    expect(chunks).to.be.greaterThan(8);
    expect(backend.chatRequests().at(-1)?.body).to.include({ logprobs: false });
    expect(backend.chatRequests().at(-1)?.body).not.to.have.property("top_logprobs");
  });

  it("a backend more generous than asked is cut to the top_logprobs the caller asked for", async () => {
    const prompt = "too many alternatives [[backend top=25]]";
    const two = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
      logprobs: true,
      top_logprobs: 2,
    });
    expect(two.choices[0]?.logprobs?.content).to.deep.equal(backendLogprobs(prompt, 8, 2));
    const none = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
      stream: true,
      logprobs: true,
    });
    let tokens = 0;
    for await (const c of none) {
      for (const t of c.choices[0]?.logprobs?.content ?? []) {
        tokens++;
        expect(t.top_logprobs).to.deep.equal([]);
      }
    }
    expect(tokens).to.equal(8);
  });

  it("a long whole answer crosses the tunnel in several chunks and arrives whole", async () => {
    const n = MAX_LOGPROBS_PER_CHUNK * 2 + 17;
    const prompt = `a long answer [[backend tokens=${n}]]`;
    const data = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
      logprobs: true,
      top_logprobs: 1,
      max_tokens: n,
    });
    expect(data.choices[0]?.message.content).to.equal(backendTokens(prompt, n).join(""));
    expect(data.choices[0]?.logprobs?.content).to.deep.equal(backendLogprobs(prompt, n, 1));
  });

  it("refuses malformed logprobs parameters with a 400 in OpenAI's error shape, naming the field", async () => {
    const messages = [{ role: "user" as const, content: "x" }];
    const cases: [Record<string, unknown>, string][] = [
      [{ logprobs: true, top_logprobs: 21 }, "top_logprobs"],
      [{ logprobs: true, top_logprobs: 1.5 }, "top_logprobs"],
      [{ top_logprobs: 2 }, "top_logprobs"],
      [{ logprobs: false, top_logprobs: 2 }, "top_logprobs"],
      [{ logprobs: "yes" }, "logprobs"],
    ];
    const before = backend.chatRequests().length;
    for (const [extra, param] of cases) {
      const body = { model: MODEL, messages, ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming;
      const err = await apiError(client.chat.completions.create(body));
      expect(err.status, JSON.stringify(extra)).to.equal(400);
      expect(err.type).to.equal("invalid_request_error");
      expect(err.param).to.equal(param);
      expect(err.message).to.include(param);
    }
    expect(backend.chatRequests().length).to.equal(before);
  });
});
