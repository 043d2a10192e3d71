// The miner's built-in demo backend: the demo model's answer streamed one
// token per delta, with its real logprobs when asked, the request's sampling
// settings honoured, real token counts, and clean failures.
import { expect } from "chai";
import { renderChatPrompt } from "../../common/demo-model/chat-template.js";
import { type DemoModel, loadDemoModel } from "../../common/demo-model/model.js";
import { ChatRequest, type DeepPartial, FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { type BackendEvent, BackendFailure } from "../../miner/backend/backend.js";
import {
  DEMO_EMBEDDING_MODEL_ID,
  DEMO_MODEL_ID,
  DemoBackend,
  type DemoBackendOptions,
} from "../../miner/backend/demo.js";

type Delta = Extract<BackendEvent, { type: "delta" }>;

async function run(chat: DeepPartial<ChatRequest>, opts: DemoBackendOptions = {}, model = DEMO_MODEL_ID) {
  const demo = new DemoBackend({ tokenDelayMs: 0, ...opts });
  const events: BackendEvent[] = [];
  for await (const e of demo.chat(model, ChatRequest.fromPartial(chat), new AbortController().signal))
    events.push(e);
  const deltas = events.filter((e): e is Delta => e.type === "delta");
  return { events, deltas, text: deltas.map((d) => d.content).join("") };
}

describe("miner demo backend", () => {
  let model: DemoModel;
  const bread = [{ role: "user", content: "How do I make bread?" }];
  const promptOf = (messages: { role: string; content: string }[]) =>
    model.encode(renderChatPrompt(messages));

  before(async () => {
    model = await loadDemoModel();
  });

  it("offers tensorclaw-demo for chat and completions and tensorclaw-demo-embed for embeddings, with the context window", async () => {
    expect(await new DemoBackend().listModels()).to.deep.equal([
      { id: DEMO_MODEL_ID, contextLength: 8192, kinds: ["chat", "completion"] },
      { id: DEMO_EMBEDDING_MODEL_ID, contextLength: 8192, kinds: ["embedding"] },
    ]);
    expect(new DemoBackend().description).to.contain("not a real LLM");
  });

  it("streams the model's answer one token per delta, with the finish reason on the last and real counts", async () => {
    const want = model.generate({ promptTokens: promptOf(bread), maxTokens: 200, temperature: 0 });
    expect(want.finishReason).to.equal("stop");
    const { events, deltas } = await run({ messages: bread, temperature: 0, maxTokens: 200 });
    expect(deltas.map((d) => d.content)).to.deep.equal(want.tokens.map((t) => t.text));
    expect(deltas.map((d) => d.finishReason)).to.deep.equal([
      ...deltas.slice(1).map(() => FinishReason.FINISH_REASON_UNSPECIFIED),
      FinishReason.FINISH_REASON_STOP,
    ]);
    expect(deltas.every((d) => d.logprobs === undefined)).to.equal(true);
    expect(events.at(-1)).to.deep.equal({
      type: "usage",
      promptTokens: promptOf(bread).length,
      completionTokens: deltas.length,
    });
  });

  it("honours max_tokens (finish reason length) and caps answers at answerTokens", async () => {
    const short = await run({ messages: bread, temperature: 0, maxTokens: 3 });
    expect(short.deltas).to.have.length(3);
    expect(short.deltas.at(-1)?.finishReason).to.equal(FinishReason.FINISH_REASON_LENGTH);
    const capped = await run({ messages: bread, temperature: 0, maxTokens: 500 }, { answerTokens: 4 });
    expect(capped.deltas).to.have.length(4);
    expect(capped.deltas.at(-1)?.finishReason).to.equal(FinishReason.FINISH_REASON_LENGTH);
    const none = await run({ messages: bread, maxTokens: 0 });
    expect(none.deltas).to.deep.equal([
      {
        type: "delta",
        content: "",
        reasoning: "",
        toolCalls: [],
        finishReason: FinishReason.FINISH_REASON_LENGTH,
      },
    ]);
    expect(none.events.at(-1)).to.deep.include({ type: "usage", completionTokens: 0 });
  });

  it("attaches each token's logprob and top alternatives when asked, as the model scores them", async () => {
    const messages = [{ role: "user", content: "Why are there tides?" }];
    const { deltas } = await run({ messages, logprobs: true, topLogprobs: 3, seed: 9n, maxTokens: 40 });
    const scored = model.score(
      promptOf(messages),
      deltas.flatMap((d) => model.encode(d.content)),
      3,
    );
    expect(deltas.length).to.equal(scored.length);
    deltas.forEach((d, i) => {
      const lp = d.logprobs ?? [];
      expect(lp).to.have.length(1);
      expect(lp[0]?.token).to.equal(d.content);
      expect(lp[0]?.logprob).to.equal(scored[i]?.logprob);
      expect(lp[0]?.topLogprobs).to.deep.equal(
        scored[i]?.top.map((a) => ({ token: a.text, logprob: a.logprob })),
      );
    });
    // Asked for logprobs without alternatives: one entry per token, no alternatives.
    const bare = await run({ messages, logprobs: true, maxTokens: 5 });
    expect(
      bare.deltas.every((d) => d.logprobs?.length === 1 && d.logprobs[0]?.topLogprobs.length === 0),
    ).to.equal(true);
  });

  it("samples with the request's temperature and seed", async () => {
    const messages = [{ role: "user", content: "Tell me about the weather." }];
    const a = await run({ messages, seed: 1n, maxTokens: 50 });
    expect((await run({ messages, seed: 1n, maxTokens: 50 })).text).to.equal(a.text);
    const texts = new Set<string>();
    for (const seed of [1n, 2n, 3n, 4n, 5n, 6n])
      texts.add((await run({ messages, seed, maxTokens: 50 })).text);
    expect(texts.size).to.be.at.least(3);
    const greedy = model.generate({ promptTokens: promptOf(messages), maxTokens: 50, temperature: 0 });
    expect((await run({ messages, seed: 1n, temperature: 0, maxTokens: 50 })).text).to.equal(
      greedy.tokens.map((t) => t.text).join(""),
    );
  });

  it("reads text content parts and renders every message with the demo template", async () => {
    const asParts = await run({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", contentPartsJson: JSON.stringify([{ type: "text", text: "How do I make bread?" }]) },
      ],
      temperature: 0,
    });
    const asText = await run({
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "How do I make bread?" },
      ],
      temperature: 0,
    });
    expect(asParts.text).to.equal(asText.text);
    expect(asParts.events.at(-1)).to.deep.include({
      promptTokens: model.encode("system: Be brief.\nuser: How do I make bread?\nassistant:").length,
    });
  });

  it("fails cleanly: another model, or a prompt that fills the context", async () => {
    const err = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e as BackendFailure,
      );
    const other = await err(run({ messages: bread }, {}, "gpt-4o"));
    expect(other).to.be.instanceOf(BackendFailure);
    expect(other?.code).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE);
    const full = await err(run({ messages: bread }, { contextLength: 5 }));
    expect(full?.code).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST);
  });

  it("stops the stream when aborted", async () => {
    const demo = new DemoBackend({ tokenDelayMs: 5, answerTokens: 1000 });
    const ac = new AbortController();
    const chat = ChatRequest.fromPartial({ messages: [{ role: "user", content: "x" }], temperature: 0 });
    let n = 0;
    const err = await (async () => {
      for await (const _ of demo.chat(DEMO_MODEL_ID, chat, ac.signal))
        if (++n === 3) ac.abort(new Error("stop"));
    })().catch((e: unknown) => e);
    expect((err as Error).message).to.equal("stop");
    expect(n).to.equal(3);
  });
});
