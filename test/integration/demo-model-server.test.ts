// The demo model's OpenAI-compatible server, driven by the official `openai`
// client (and plain fetch for vLLM's /tokenize): chat with streamed logprobs,
// legacy completions with echo and logprobs, tokenize, and the
// validator's judge path — an honest answer scores like the model's own,
// filler far below.
import { expect } from "chai";
import OpenAI from "openai";
import { renderChatPrompt } from "../../common/demo-model/chat-template.js";
import { DEMO_EMBEDDING_MODEL_ID, demoEmbedding } from "../../common/demo-model/embedding.js";
import { DEMO_MODEL_ID, type DemoModel, loadDemoModel } from "../../common/demo-model/model.js";
import { type DemoModelServer, startDemoModelServer } from "../../common/demo-model/server.js";
import { ChatRequest, CompletionRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { BackendEvent } from "../../miner/backend/backend.js";
import { DemoBackend } from "../../miner/backend/demo.js";
import { OpenAIHttpBackend } from "../../miner/backend/openai.js";

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

interface Tokenized {
  tokens: number[];
  count: number;
  max_model_len: number;
  token_strs?: string[];
}

interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

describe("demo model server", () => {
  let model: DemoModel;
  let server: DemoModelServer;
  let client: OpenAI;

  const post = (path: string, body: unknown) =>
    fetch(`${server.url}${path}`, {
      method: "POST",
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
  const tokenize = async (body: unknown): Promise<Tokenized> => {
    const r = await post("/tokenize", body);
    expect(r.status).to.equal(200);
    return (await r.json()) as Tokenized;
  };

  before(async () => {
    model = await loadDemoModel();
  });
  beforeEach(async () => {
    server = await startDemoModelServer({ host: "127.0.0.1", port: 0, now: () => 1_700_000_000_000 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: "unused", maxRetries: 0 });
  });
  afterEach(async () => {
    await server.close();
  });

  it("lists the demo model with its context length", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).to.deep.equal([DEMO_MODEL_ID]);
    expect((list.data[0] as unknown as { max_model_len: number }).max_model_len).to.equal(8192);
  });

  it("embeds texts with the demo embedding model as the miner's demo backend does (a reference for it)", async () => {
    const texts = ["The river floods in spring.", "Quarterly revenue rose."];
    const r = await client.embeddings.create({
      model: DEMO_EMBEDDING_MODEL_ID,
      input: texts,
      encoding_format: "float",
    });
    expect(r.data.map((d) => d.index)).to.deep.equal([0, 1]);
    const miner = await new DemoBackend().embed(
      DEMO_EMBEDDING_MODEL_ID,
      { input: texts, dimensions: undefined, user: "" },
      new AbortController().signal,
    );
    expect(r.data.map((d) => d.embedding)).to.deep.equal(miner.vectors);
    expect(r.data[0]?.embedding).to.deep.equal(demoEmbedding(texts[0] as string));
    expect(r.usage.prompt_tokens).to.equal(texts.reduce((n, t) => n + model.encode(t).length, 0));
    const short = await client.embeddings.create({
      model: DEMO_EMBEDDING_MODEL_ID,
      input: "one text",
      dimensions: 8,
      encoding_format: "float",
    });
    expect(short.data[0]?.embedding).to.have.length(8);
    // What it cannot serve is the caller's error, named.
    const refused = async (body: Record<string, unknown>) => {
      const res = await post("/v1/embeddings", { model: DEMO_EMBEDDING_MODEL_ID, input: "x", ...body });
      return { status: res.status, error: ((await res.json()) as { error: { message: string } }).error };
    };
    expect(await refused({ model: DEMO_MODEL_ID })).to.deep.include({ status: 404 });
    expect((await refused({ input: [] })).error.message).to.match(/^input: /);
    expect((await refused({ input: [1] })).status).to.equal(400);
    expect((await refused({ dimensions: 257 })).error.message).to.match(/^dimensions: .*1 to 256/);
    expect((await refused({ encoding_format: "base64" })).error.message).to.match(/^encoding_format: /);
  });

  it("answers a chat with the model's own tokens and logprobs, whole and streamed alike", async () => {
    const messages = [
      { role: "system" as const, content: "Answer briefly." },
      { role: "user" as const, content: "How do I make bread?" },
    ];
    const prompt = model.encode(renderChatPrompt(messages));
    const want = model.generate({
      promptTokens: prompt,
      maxTokens: 30,
      temperature: 0.7,
      seed: 11,
      topLogprobs: 3,
    });

    const whole = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages,
      max_tokens: 30,
      temperature: 0.7,
      seed: 11,
      logprobs: true,
      top_logprobs: 3,
    });
    const choice = whole.choices[0];
    expect(choice?.message.content).to.equal(want.tokens.map((t) => t.text).join(""));
    expect(choice?.finish_reason).to.equal(want.finishReason);
    expect(choice?.logprobs?.content?.map((c) => [c.token, c.logprob])).to.deep.equal(
      want.tokens.map((t) => [t.text, t.logprob]),
    );
    const first = choice?.logprobs?.content?.[0];
    expect(first?.bytes).to.deep.equal([...Buffer.from(first?.token ?? "")]);
    expect(first?.top_logprobs.map((a) => a.token)).to.deep.equal(want.tokens[0]?.top.map((a) => a.text));
    expect(whole.usage).to.deep.equal({
      prompt_tokens: prompt.length,
      completion_tokens: want.tokens.length,
      total_tokens: prompt.length + want.tokens.length,
    });

    const stream = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages,
      max_completion_tokens: 30,
      temperature: 0.7,
      seed: 11,
      logprobs: true,
      top_logprobs: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    const streamed: OpenAI.Chat.ChatCompletionTokenLogprob[] = [];
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      const ch = c.choices[0];
      text += ch?.delta.content ?? "";
      streamed.push(...(ch?.logprobs?.content ?? []));
      finish = ch?.finish_reason ?? finish;
      usage = c.usage ?? usage;
    }
    expect(text).to.equal(choice?.message.content);
    expect(streamed).to.deep.equal(choice?.logprobs?.content);
    expect(finish).to.equal(want.finishReason);
    expect(usage).to.deep.equal(whole.usage);
  });

  it("streams a long answer (past the points where it yields) exactly as it answers whole", async () => {
    const body = {
      model: DEMO_MODEL_ID,
      messages: [{ role: "user" as const, content: "Tell me about routers and packets." }],
      temperature: 0,
    };
    const whole = await client.chat.completions.create(body);
    expect(whole.usage?.completion_tokens).to.be.greaterThan(64);
    expect(whole.choices[0]?.finish_reason).to.equal("stop");
    let text = "";
    let chunks = 0;
    for await (const c of await client.chat.completions.create({ ...body, stream: true })) {
      const piece = c.choices[0]?.delta.content;
      if (piece) {
        text += piece;
        chunks++;
      }
    }
    expect(text).to.equal(whole.choices[0]?.message.content);
    expect(chunks).to.equal(whole.usage?.completion_tokens);
  });

  it("stops at max_tokens with finish_reason length, and sends logprobs only when asked", async () => {
    const r = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: [{ role: "user", content: "Tell me about the sea." }],
      max_tokens: 2,
    });
    expect(r.choices[0]?.finish_reason).to.equal("length");
    expect(r.usage?.completion_tokens).to.equal(2);
    expect(r.choices[0]?.logprobs).to.equal(null);
  });

  it("tokenizes prompts and conversations the way vLLM's /tokenize does", async () => {
    const messages = [{ role: "user", content: "Why are there tides?" }];
    const withPrompt = await tokenize({ model: DEMO_MODEL_ID, messages, add_generation_prompt: true });
    expect(withPrompt.tokens).to.deep.equal(model.encode("user: Why are there tides?\nassistant:"));
    expect(withPrompt.count).to.equal(withPrompt.tokens.length);
    expect(withPrompt.max_model_len).to.equal(8192);
    const without = await tokenize({ messages, add_generation_prompt: false });
    expect(without.tokens).to.deep.equal(model.encode("user: Why are there tides?\n"));
    // Also under /v1, for a judge whose base URL ends there.
    const v1 = await post("/v1/tokenize", { messages, add_generation_prompt: true });
    expect(((await v1.json()) as Tokenized).tokens).to.deep.equal(withPrompt.tokens);
    const plain = await tokenize({
      model: DEMO_MODEL_ID,
      prompt: " The moon",
      add_special_tokens: false,
      return_token_strs: true,
    });
    expect(plain.token_strs?.join("")).to.equal(" The moon");
  });

  it("scores a token-id prompt with echo and legacy logprobs, with max_tokens 0", async () => {
    const ids = model.encode("user: Why are there tides?\nassistant: The moon pulls on the water.");
    const r = await client.completions.create({
      model: DEMO_MODEL_ID,
      prompt: ids,
      echo: true,
      logprobs: 4,
      max_tokens: 0,
    });
    const c = r.choices[0];
    const lp = c?.logprobs as unknown as LegacyLogprobs;
    expect(c?.text).to.equal(model.decode(ids));
    expect(c?.finish_reason).to.equal("length");
    expect(r.usage).to.deep.equal({
      prompt_tokens: ids.length,
      completion_tokens: 0,
      total_tokens: ids.length,
    });
    expect(lp.tokens).to.deep.equal(ids.map((id) => model.tokenText(id)));
    expect(lp.token_logprobs[0]).to.equal(null);
    expect(lp.top_logprobs[0]).to.equal(null);
    const scored = model.score(ids.slice(0, 1), ids.slice(1), 4);
    expect(lp.token_logprobs.slice(1)).to.deep.equal(scored.map((t) => t.logprob));
    scored.forEach((t, i) => {
      const top = lp.top_logprobs[i + 1] ?? {};
      // The k alternatives in rank order, plus the chosen token.
      expect(Object.keys(top).slice(0, 4)).to.deep.equal(t.top.map((a) => a.text));
      expect(top[t.text]).to.equal(t.logprob);
    });
    let offset = 0;
    lp.tokens.forEach((tok, i) => {
      expect(lp.text_offset[i]).to.equal(offset);
      offset += tok.length;
    });
  });

  it("completes a text that ends a sentence with at least one token, as the miner's demo backend does", async () => {
    const prompt = "How does a river find its way to the sea?";
    const r = await client.completions.create({
      model: DEMO_MODEL_ID,
      prompt,
      max_tokens: 12,
      temperature: 0,
    });
    const text = r.choices[0]?.text ?? "";
    expect(text).to.not.equal("");
    let viaMiner = "";
    for await (const e of new DemoBackend().complete(
      DEMO_MODEL_ID,
      CompletionRequest.fromPartial({ prompt: [prompt], maxTokens: 12, temperature: 0 }),
      new AbortController().signal,
    )) {
      if (e.type === "delta") viaMiner += e.content;
    }
    expect(viaMiner).to.equal(text);
  });

  it("completes a text prompt, with and without echo", async () => {
    const prompt = "user: What is compost?\nassistant:";
    const want = model.generate({
      promptTokens: model.encode(prompt),
      maxTokens: 8,
      temperature: 0,
      topLogprobs: 2,
    });
    const plain = await client.completions.create({
      model: DEMO_MODEL_ID,
      prompt,
      max_tokens: 8,
      temperature: 0,
      logprobs: 2,
    });
    const answer = want.tokens.map((t) => t.text).join("");
    expect(plain.choices[0]?.text).to.equal(answer);
    const lp = plain.choices[0]?.logprobs as unknown as LegacyLogprobs;
    expect(lp.token_logprobs).to.deep.equal(want.tokens.map((t) => t.logprob));
    expect(lp.text_offset[0]).to.equal(0);
    const echoed = await client.completions.create({
      model: DEMO_MODEL_ID,
      prompt: [prompt],
      max_tokens: 8,
      temperature: 0,
      echo: true,
    });
    expect(echoed.choices[0]?.text).to.equal(prompt + answer);
    expect(echoed.choices[0]?.logprobs).to.equal(null);
    // The legacy endpoint's default budget is 16 tokens.
    const dflt = await client.completions.create({
      model: DEMO_MODEL_ID,
      prompt: "The sea covers",
      temperature: 0,
    });
    expect(dflt.usage?.completion_tokens).to.be.at.most(16);
  });

  it("runs the validator's judge path: an honest answer scores like the model's own, filler far below", async () => {
    const judge = async (messages: { role: string; content: string }[], answer: string, k: number) => {
      const head = await tokenize({ model: DEMO_MODEL_ID, messages, add_generation_prompt: true });
      const tail = await tokenize({ model: DEMO_MODEL_ID, prompt: answer, add_special_tokens: false });
      const r = await client.completions.create({
        model: DEMO_MODEL_ID,
        prompt: [...head.tokens, ...tail.tokens],
        echo: true,
        logprobs: k,
        max_tokens: 0,
      });
      const lp = r.choices[0]?.logprobs as unknown as LegacyLogprobs;
      const n = tail.tokens.length;
      const logprobs = lp.token_logprobs.slice(-n) as number[];
      const tops = lp.top_logprobs.slice(-n) as Record<string, number>[];
      // In the top k: ranked among the first k alternatives (the chosen token is appended after them).
      const inTop = lp.tokens.slice(-n).filter((t, i) =>
        Object.keys(tops[i] ?? {})
          .slice(0, k)
          .includes(t),
      );
      return { mean: mean(logprobs), inTopShare: inTop.length / n };
    };
    const questions = [
      "How do I make bread?",
      "Why are there tides?",
      "What is latency?",
      "Tell me a story.",
    ];
    const fillers = [
      "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.",
      "I'm sorry, but I can't help with that request.",
      "Bread is made by baking dough in an oven.",
    ];
    const honest: { mean: number; inTopShare: number; own: number }[] = [];
    const filler: { mean: number; inTopShare: number }[] = [];
    for (const q of questions) {
      const messages = [{ role: "user", content: q }];
      for (const temperature of [0, 1]) {
        const answer = await client.chat.completions.create({
          model: DEMO_MODEL_ID,
          messages: [{ role: "user", content: q }],
          temperature,
          seed: 3,
          max_tokens: 64,
          logprobs: true,
        });
        const text = answer.choices[0]?.message.content ?? "";
        const own = mean((answer.choices[0]?.logprobs?.content ?? []).map((c) => c.logprob));
        honest.push({ ...(await judge(messages, text, 5)), own });
      }
      for (const f of fillers) filler.push(await judge(messages, f, 5));
    }
    // The judge sees exactly what the model reported while writing (same tokens after re-tokenizing).
    for (const h of honest) expect(h.mean).to.be.closeTo(h.own, 1e-9);
    // Measured when written: honest mean −0.25 … −0.38 with ≥ 97 % of tokens in the top 5;
    // filler mean −10.8 … −19.6 with ≤ 30 % in the top 5.
    expect(Math.min(...honest.map((h) => h.mean))).to.be.greaterThan(-3);
    expect(Math.min(...honest.map((h) => h.inTopShare))).to.be.at.least(0.7);
    expect(Math.max(...filler.map((f) => f.mean))).to.be.lessThan(-6);
    expect(Math.max(...filler.map((f) => f.inTopShare))).to.be.at.most(0.5);
  });

  it("serves a miner as an ordinary OpenAI backend: same answer as the in-process demo backend", async () => {
    const backend = new OpenAIHttpBackend({ baseUrl: `${server.url}/v1` });
    try {
      expect((await backend.listModels(new AbortController().signal)).map((m) => m.id)).to.deep.equal([
        DEMO_MODEL_ID,
      ]);
      const chat = ChatRequest.fromPartial({
        messages: [{ role: "user", content: "What should I cook for dinner?" }],
        maxTokens: 40,
        temperature: 0,
        stream: true,
      });
      const text = async (events: AsyncIterable<BackendEvent>) => {
        let out = "";
        for await (const e of events) if (e.type === "delta") out += e.content;
        return out;
      };
      const viaHttp = await text(backend.chat(DEMO_MODEL_ID, chat, new AbortController().signal));
      const inProcess = await text(
        new DemoBackend({ tokenDelayMs: 0 }).chat(DEMO_MODEL_ID, chat, new AbortController().signal),
      );
      expect(viaHttp).to.not.equal("");
      expect(viaHttp).to.equal(inProcess);
    } finally {
      backend.close();
    }
  });
});
