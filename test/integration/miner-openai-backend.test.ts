import { expect } from "chai";
import OpenAI from "openai";
import {
  backendTokens,
  type OpenAIBackend,
  promptTextOf,
  startOpenAIBackend,
} from "../support/openai-backend.js";

// The test backend is itself test infrastructure other suites rely on, so
// it is checked against the official client.
describe("test OpenAI backend", () => {
  let backend: OpenAIBackend;
  let client: OpenAI;
  beforeEach(async () => {
    backend = await startOpenAIBackend({ models: ["m1", "m2"], contextLength: 4096, tokens: 6 });
    client = new OpenAI({ baseURL: backend.url, apiKey: "unused", maxRetries: 0 });
  });
  afterEach(async () => {
    await backend.close();
  });

  it("lists its models with max_model_len", async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).to.deep.equal(["m1", "m2"]);
    expect((list.data[0] as unknown as { max_model_len: number }).max_model_len).to.equal(4096);
  });

  it("streams deterministic pieces and a final usage chunk", async () => {
    const messages = [{ role: "user" as const, content: "hello there" }];
    const stream = await client.chat.completions.create({
      model: "m1",
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      text += c.choices[0]?.delta.content ?? "";
      finish = c.choices[0]?.finish_reason ?? finish;
      if (c.usage) usage = c.usage;
    }
    expect(text).to.equal(backendTokens(promptTextOf({ messages }), 6).join(""));
    expect(finish).to.equal("stop");
    expect(usage?.completion_tokens).to.equal(6);
    expect(usage?.prompt_tokens).to.equal(2 + 3);
    expect(backend.chatRequests()[0]?.completionTokens).to.equal(6);
  });

  it("caps at max_tokens with finish reason length, and honours per-request directives", async () => {
    const r = await client.chat.completions.create({
      model: "m1",
      messages: [{ role: "user", content: "[[backend tokens=20]] go" }],
      max_tokens: 5,
    });
    expect(r.choices[0]?.finish_reason).to.equal("length");
    expect(r.usage?.completion_tokens).to.equal(5);
  });

  it("streams tool-call deltas whose arguments assemble into JSON", async () => {
    const stream = await client.chat.completions.create({
      model: "m1",
      messages: [{ role: "user", content: "call it" }],
      tools: [{ type: "function", function: { name: "lookup", parameters: { type: "object" } } }],
      stream: true,
    });
    let args = "";
    let name = "";
    let finish: string | null = null;
    for await (const c of stream) {
      for (const t of c.choices[0]?.delta.tool_calls ?? []) {
        name += t.function?.name ?? "";
        args += t.function?.arguments ?? "";
      }
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    expect(name).to.equal("lookup");
    expect(JSON.parse(args)).to.have.property("text");
    expect(finish).to.equal("tool_calls");
  });

  it("answers HTTP 500 and 429 with OpenAI error bodies", async () => {
    backend.configure({ fault: "http500" });
    const e500 = await client.chat.completions
      .create({ model: "m1", messages: [{ role: "user", content: "x" }] })
      .catch((e: unknown) => e);
    expect(e500).to.be.instanceOf(OpenAI.InternalServerError);
    const e429 = await client.chat.completions
      .create({ model: "m1", messages: [{ role: "user", content: "[[backend fault=http429]]" }] })
      .catch((e: unknown) => e);
    expect(e429).to.be.instanceOf(OpenAI.RateLimitError);
  });

  it("breaks the stream with invalid JSON when asked", async () => {
    const stream = await client.chat.completions.create({
      model: "m1",
      messages: [{ role: "user", content: "[[backend fault=invalid-json after=2]]" }],
      stream: true,
    });
    const err = await (async () => {
      for await (const _ of stream) {
        // drain
      }
    })().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(Error);
    expect(backend.chatRequests()[0]?.completionTokens).to.equal(2);
  });

  it("records a client abort of a hanging request", async () => {
    backend.configure({ fault: "hang" });
    const ac = new AbortController();
    const p = client.chat.completions
      .create({ model: "m1", messages: [{ role: "user", content: "x" }] }, { signal: ac.signal })
      .catch((e: unknown) => e);
    await backend.waitForChatRequests(1);
    ac.abort();
    const rec = await backend.waitForAbort();
    expect(rec.outcome).to.equal("aborted");
    expect(await p).to.be.instanceOf(Error);
  });

  it("comes back on the same port after stop", async () => {
    const url = backend.url;
    await backend.stop();
    const down = await fetch(`${url}/models`).catch((e: unknown) => e);
    expect(down).to.be.instanceOf(Error);
    await backend.listen();
    expect(backend.url).to.equal(url);
    expect((await fetch(`${url}/models`)).status).to.equal(200);
  });
});
