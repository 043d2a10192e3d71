import { expect } from "chai";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import {
  CompletionTokenCounter,
  countPromptTokens,
  countTextTokens,
} from "../../miner/backend/token-counter.js";

describe("miner token counting", () => {
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
});
