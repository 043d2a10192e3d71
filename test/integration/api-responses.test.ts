import { expect } from "chai";
import OpenAI from "openai";
import { apiError } from "../support/api-error.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { backendTokens, type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";

const MODEL = "test-model";

describe("api responses: client.responses.create → router → real miner → chat backend", function () {
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

  const lastBody = () => backend.chatRequests().at(-1)?.body as Record<string, unknown>;

  it("non-streaming: instructions and input become chat messages; the answer is a response object", async () => {
    const before = router.usage.events.length;
    const { data: r, response } = await client.responses
      .create({
        model: MODEL,
        instructions: "Be brief.",
        input: "Say something.",
        temperature: 0.5,
        metadata: { ticket: "42" },
      })
      .withResponse();
    const sent = lastBody();
    expect(sent.messages).to.deep.equal([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Say something." },
    ]);
    expect(sent).to.include({ temperature: 0.5, stream: false });
    expect(sent).not.to.have.any.keys("max_tokens", "max_completion_tokens", "metadata");
    const text = backendTokens("Be brief.\nSay something.", 8).join("");
    const id = response.headers.get("x-request-id");
    expect(r).to.deep.include({
      id: `resp_${id}`,
      object: "response",
      status: "completed",
      model: MODEL,
      output_text: text,
      instructions: "Be brief.",
      temperature: 0.5,
      metadata: { ticket: "42" },
      error: null,
      incomplete_details: null,
    });
    expect(r.output).to.deep.equal([
      {
        id: `msg_${id}`,
        type: "message",
        status: "completed",
        role: "assistant",
        content: [{ type: "output_text", text, annotations: [], logprobs: [] }],
      },
    ]);
    const ev = (await router.usage.waitFor(before + 1)).at(-1);
    expect(r.usage).to.deep.include({
      input_tokens: ev?.promptTokens,
      output_tokens: ev?.completionTokens,
      total_tokens: (ev?.promptTokens ?? 0) + (ev?.completionTokens ?? 0),
    });
    expect(ev?.completionTokens).to.equal(8);
  });

  it("message items with text parts, and max_output_tokens sent as max_completion_tokens (incomplete when hit)", async () => {
    const r = await client.responses.create({
      model: MODEL,
      max_output_tokens: 3,
      input: [
        { role: "user", content: [{ type: "input_text", text: "First question." }] },
        { role: "assistant", content: "First answer." },
        { type: "message", role: "user", content: [{ type: "input_text", text: "Second." }] },
      ],
    });
    expect(lastBody()).to.include({ max_completion_tokens: 3 });
    expect(lastBody().messages).to.deep.equal([
      { role: "user", content: "First question." },
      { role: "assistant", content: "First answer." },
      { role: "user", content: "Second." },
    ]);
    expect(r.status).to.equal("incomplete");
    expect(r.incomplete_details).to.deep.equal({ reason: "max_output_tokens" });
    expect(r.output_text).to.equal(backendTokens("First question.\nFirst answer.\nSecond.", 3).join(""));
  });

  it("streaming: the typed events in order, the deltas spelling the text, usage on response.completed", async () => {
    const stream = await client.responses.create({ model: MODEL, input: "Stream it.", stream: true });
    const types: string[] = [];
    const seqs: number[] = [];
    let deltas = "";
    let done = "";
    let completed: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      seqs.push(ev.sequence_number);
      if (ev.type === "response.output_text.delta") deltas += ev.delta;
      if (ev.type === "response.output_text.done") done = ev.text;
      if (ev.type === "response.completed") completed = ev.response;
    }
    const text = backendTokens("Stream it.", 8).join("");
    expect(types).to.deep.equal([
      "response.created",
      "response.in_progress",
      "response.output_item.added",
      "response.content_part.added",
      ...Array.from({ length: 8 }, () => "response.output_text.delta"),
      "response.output_text.done",
      "response.content_part.done",
      "response.output_item.done",
      "response.completed",
    ]);
    expect(seqs).to.deep.equal(types.map((_, i) => i));
    expect(deltas).to.equal(text);
    expect(done).to.equal(text);
    expect(completed?.status).to.equal("completed");
    expect(completed?.output_text).to.equal(text);
    expect(completed?.usage?.output_tokens).to.equal(8);
    expect(lastBody()).to.include({ stream: true });
  });

  it("streaming: a backend failure after output ends the stream with response.failed", async () => {
    const stream = await client.responses.create({
      model: MODEL,
      input: "[[backend tokens=8 delay=10 fault=close-mid-stream after=3]] break",
      stream: true,
    });
    const types: string[] = [];
    let failed: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === "response.failed") failed = ev.response;
    }
    expect(types.at(-1)).to.equal("response.failed");
    expect(types).not.to.include("response.completed");
    expect(failed?.status).to.equal("failed");
    expect(failed?.error?.message).to.be.a("string").and.not.equal("");
  });

  it("refuses what it does not support with a 400 naming the field, before any miner is tried", async () => {
    const before = backend.chatRequests().length;
    const cases: [Record<string, unknown>, string][] = [
      [{ tools: [{ type: "function", name: "f", parameters: {} }] }, "tools"],
      [{ previous_response_id: "resp_1" }, "previous_response_id"],
      [{ store: true }, "store"],
      [{ background: true }, "background"],
      [{ reasoning: { effort: "low" } }, "reasoning"],
      [{ made_up: 1 }, "made_up"],
      [
        { input: [{ role: "user", content: [{ type: "input_image", image_url: "https://x/y.png" }] }] },
        "input[0].content[0].type",
      ],
      [{ input: [{ type: "function_call_output", call_id: "c", output: "{}" }] }, "input[0].type"],
      [{ max_output_tokens: 0 }, "max_output_tokens"],
    ];
    for (const [over, param] of cases) {
      const body = {
        model: MODEL,
        input: "hi",
        ...over,
      } as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming;
      const e = await apiError(client.responses.create(body));
      expect(e.status, param).to.equal(400);
      expect(e.type, param).to.equal("invalid_request_error");
      expect(e.param, param).to.equal(param);
    }
    expect(backend.chatRequests()).to.have.length(before);
  });
});
