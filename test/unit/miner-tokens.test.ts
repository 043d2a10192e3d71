import { expect } from "chai";
import { ChatRequest, FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import type { BackendEvent } from "../../miner/backend/backend.js";
import { DEMO_MODEL_ID, DemoBackend, demoAnswerTokens } from "../../miner/backend/demo.js";
import {
  CompletionTokenCounter,
  countPromptTokens,
  countTextTokens,
} from "../../miner/backend/token-counter.js";

describe("miner token counting and the demo model", () => {
  it("counts with a real BPE tokenizer, treating special-token text as plain text", () => {
    expect(countTextTokens("")).to.equal(0);
    expect(countTextTokens("The quick brown fox")).to.equal(4);
    // Hostile input must not throw (gpt-tokenizer refuses special tokens by default).
    expect(countTextTokens("a <|endoftext|> b")).to.be.greaterThan(3);
  });

  it("counts a completion over the joined text, not per delta", () => {
    const c = new CompletionTokenCounter();
    // "hello" split in the middle of a BPE token: per-delta counting would say 2.
    c.add("hel", "", "");
    c.add("lo", "", "");
    expect(c.total()).to.equal(countTextTokens("hello"));
    c.add("", "thinking", '{"a":1}');
    expect(c.total()).to.equal(
      countTextTokens("hello") + countTextTokens("thinking") + countTextTokens('{"a":1}'),
    );
  });

  it("counts prompt tokens over contents, text parts, tool calls and tools, plus framing", () => {
    const base = countPromptTokens(ChatRequest.fromPartial({ messages: [{ role: "user", content: "" }] }));
    const withText = countPromptTokens(
      ChatRequest.fromPartial({ messages: [{ role: "user", content: "The quick brown fox" }] }),
    );
    expect(withText - base).to.equal(4);
    const parts = countPromptTokens(
      ChatRequest.fromPartial({
        messages: [{ role: "user", contentPartsJson: '[{"type":"text","text":"The quick brown fox"}]' }],
      }),
    );
    expect(parts).to.equal(withText);
    const tools = countPromptTokens(
      ChatRequest.fromPartial({
        messages: [{ role: "user", content: "" }],
        tools: [{ name: "lookup", parametersJson: "{}" }],
      }),
    );
    expect(tools).to.be.greaterThan(base);
  });

  it("streams the demo answer token by token, honours max_tokens and reports real counts", async () => {
    const demo = new DemoBackend({ tokenDelayMs: 0, answerTokens: 20 });
    expect((await demo.listModels()).map((m) => m.id)).to.deep.equal([DEMO_MODEL_ID]);
    const chat = ChatRequest.fromPartial({ messages: [{ role: "user", content: "hi there" }], maxTokens: 5 });
    const events: BackendEvent[] = [];
    for await (const e of demo.chat(DEMO_MODEL_ID, chat, new AbortController().signal)) events.push(e);
    const deltas = events.flatMap((e) => (e.type === "delta" ? [e] : []));
    expect(deltas.map((d) => d.content)).to.deep.equal(demoAnswerTokens("hi there", 5));
    expect(deltas.map((d) => d.finishReason)).to.deep.equal([0, 0, 0, 0, FinishReason.FINISH_REASON_LENGTH]);
    expect(events.at(-1)).to.deep.equal({
      type: "usage",
      promptTokens: countPromptTokens(chat),
      completionTokens: 5,
    });
    // Each piece is one real token of the tokenizer.
    for (const d of deltas) expect(countTextTokens(d.content)).to.equal(1);
    // Deterministic per prompt.
    expect(demoAnswerTokens("hi there", 20)).to.deep.equal(demoAnswerTokens("hi there", 20));
  });

  it("stops the demo stream when aborted", async () => {
    const demo = new DemoBackend({ tokenDelayMs: 5, answerTokens: 1000 });
    const ac = new AbortController();
    const chat = ChatRequest.fromPartial({ messages: [{ role: "user", content: "x" }] });
    let n = 0;
    const err = await (async () => {
      for await (const _ of demo.chat(DEMO_MODEL_ID, chat, ac.signal))
        if (++n === 3) ac.abort(new Error("stop"));
    })().catch((e: unknown) => e);
    expect((err as Error).message).to.equal("stop");
    expect(n).to.equal(3);
  });
});
