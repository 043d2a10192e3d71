import { expect } from "chai";
import { Encodings } from "../../common/tokens/encodings.js";
import { ChatRequest, FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import {
  choicesOf,
  completionCeiling,
  reservedTokens,
  UNLIMITED_RESERVE_TOKENS,
} from "../../router/api/chat-ceiling.js";
import { creditedUsage, type FinishedRequest } from "../../router/api/chat-usage.js";
import { ChunkShaper, CompletionAggregator, openaiUsage } from "../../router/api/openai-response.js";
import type { InferenceCall, RelayedChoice } from "../../router/tunnel/types.js";

const IDENT = { id: "chatcmpl-1", created: 1700000000, model: "m" };

function chunk(over: Partial<ResponseChunk> = {}): ResponseChunk {
  return {
    requestId: 1,
    contentDelta: "",
    toolCalls: [],
    finishReason: FinishReason.FINISH_REASON_UNSPECIFIED,
    choiceIndex: 0,
    systemFingerprint: "",
    embeddings: [],
    reasoningDelta: "",
    logprobs: [],
    ...over,
  };
}

describe("chat ceiling: what the router credits, holds and reserves per choice", () => {
  it("is the caller's smaller limit, else the model's context, else the router's fallback", () => {
    const chat = (o: Partial<ChatRequest>) => ChatRequest.fromPartial(o);
    expect(completionCeiling(chat({ maxTokens: 50, maxCompletionTokens: 20 }), 8192, 4096)).to.equal(20);
    expect(completionCeiling(chat({ maxTokens: 50 }), 8192, 4096)).to.equal(50);
    expect(completionCeiling(chat({ maxCompletionTokens: 9000 }), 8192, 4096)).to.equal(9000);
    expect(completionCeiling(chat({}), 8192, 4096)).to.equal(8192);
    expect(completionCeiling(chat({}), 0, 4096)).to.equal(4096);
  });

  it("reserves the prompt estimate plus n times the caller's limit, or the documented estimate", () => {
    const prompt = { bytes: 40, messages: 1 };
    expect(reservedTokens(ChatRequest.fromPartial({ maxTokens: 18 }), prompt)).to.equal(10 + 18);
    expect(reservedTokens(ChatRequest.fromPartial({ n: 3, maxCompletionTokens: 18 }), prompt)).to.equal(
      10 + 3 * 18,
    );
    expect(reservedTokens(ChatRequest.fromPartial({ n: 2 }), prompt)).to.equal(
      10 + 2 * UNLIMITED_RESERVE_TOKENS,
    );
    expect(choicesOf(ChatRequest.fromPartial({}))).to.equal(1);
  });
});

describe("chat usage: each choice is credited on its own", () => {
  const encodings = new Encodings();
  let count: (t: string) => number;
  before(async () => {
    count = await encodings.load("o200k_base");
  });

  function call(texts: readonly string[]): InferenceCall {
    const choices: RelayedChoice[] = texts.map((content) => ({
      content,
      reasoning: "",
      tools: "",
      bytes: Buffer.byteLength(content),
    }));
    return {
      events: (async function* () {})(),
      relayedBytes: () => choices.reduce((s, c) => s + c.bytes, 0),
      relayedText: () => ({ content: texts.join(""), reasoning: "", tools: "" }),
      relayedChoices: () => choices,
      cancel: () => {},
    };
  }

  const request = (texts: readonly string[], over: Partial<FinishedRequest> = {}): FinishedRequest => ({
    requestId: "r1",
    model: "m",
    startedAtMs: 1,
    prompt: { bytes: 11, messages: 1 },
    maxTokens: 5,
    call: call(texts),
    minerHotkey: "5Miner",
    reported: { promptTokens: 3, completionTokens: 9_000 },
    outcome: "completed",
    lastAttempt: "served",
    chat: ChatRequest.fromPartial({ n: texts.length, messages: [{ role: "user", content: "hello there" }] }),
    count,
    ...over,
  });

  const short = "one two";
  const long = " word".repeat(40);

  it("allows each choice its own end-of-turn token, so an honest n = 2 report is not cut", () => {
    const u = creditedUsage(request([short, short], { reported: { promptTokens: 3, completionTokens: 6 } }));
    expect(count(short)).to.equal(2);
    expect(u).to.deep.equal({ promptTokens: 3, completionTokens: 6, clamped: false });
  });

  it("caps a choice that ran past the ceiling at ceiling + 1, leaving the other choice whole", () => {
    expect(count(long)).to.be.greaterThan(30);
    const u = creditedUsage(request([short, long]));
    expect(u.completionTokens).to.equal(count(short) + 1 + (5 + 1));
    expect(u.clamped).to.equal(true);
  });

  it("bounds by bytes per choice while the tokenizer is not loaded", () => {
    const u = creditedUsage(request([short, long], { count: undefined, maxTokens: 10 }));
    expect(u.completionTokens).to.equal(Buffer.byteLength(short) + 1 + (10 + 1));
  });
});

describe("api response: several choices and system_fingerprint", () => {
  it("streams each choice under its index, each starting with the role", () => {
    const s = new ChunkShaper(IDENT, false);
    const a = JSON.parse(s.chunk(chunk({ contentDelta: "A" })));
    const b = JSON.parse(s.chunk(chunk({ contentDelta: "B", choiceIndex: 1 })));
    const a2 = JSON.parse(
      s.chunk(chunk({ contentDelta: "a", finishReason: FinishReason.FINISH_REASON_STOP })),
    );
    expect(a.choices).to.deep.equal([
      { index: 0, delta: { role: "assistant", content: "A" }, logprobs: null, finish_reason: null },
    ]);
    expect(b.choices).to.deep.equal([
      { index: 1, delta: { role: "assistant", content: "B" }, logprobs: null, finish_reason: null },
    ]);
    expect(a2.choices[0]).to.deep.include({ index: 0, delta: { content: "a" }, finish_reason: "stop" });
  });

  it("shows system_fingerprint as null until known, then the first one on every chunk", () => {
    const s = new ChunkShaper(IDENT, true);
    expect(JSON.parse(s.chunk(chunk({ contentDelta: "x" }))).system_fingerprint).to.equal(null);
    expect(JSON.parse(s.chunk(chunk({ systemFingerprint: "fp_1" }))).system_fingerprint).to.equal("fp_1");
    expect(JSON.parse(s.chunk(chunk({ systemFingerprint: "fp_2" }))).system_fingerprint).to.equal("fp_1");
    expect(JSON.parse(s.chunk(chunk({}))).system_fingerprint).to.equal("fp_1");
    expect(JSON.parse(s.usageChunk(openaiUsage(1, 2))).system_fingerprint).to.equal("fp_1");
  });

  it("drops a fingerprint longer than 128 bytes", () => {
    const s = new ChunkShaper(IDENT, false);
    expect(JSON.parse(s.chunk(chunk({ systemFingerprint: "é".repeat(65) }))).system_fingerprint).to.equal(
      null,
    );
    const agg = new CompletionAggregator();
    agg.add(chunk({ contentDelta: "x", systemFingerprint: "f".repeat(129) }));
    agg.add(chunk({ systemFingerprint: "f".repeat(128) }));
    expect(agg.completion(IDENT, openaiUsage(1, 1)).system_fingerprint).to.equal("f".repeat(128));
  });

  it("aggregates n choices, each with its own text, finish reason and logprobs", () => {
    const agg = new CompletionAggregator({ top: 0, maxEntries: 1 }, 3);
    const lp = (token: string) => [{ token, logprob: -0.5, topLogprobs: [] }];
    agg.add(chunk({ contentDelta: "B", choiceIndex: 1, logprobs: lp("B"), systemFingerprint: "fp" }));
    agg.add(chunk({ contentDelta: "A", logprobs: lp("A") }));
    // Past the ceiling of one entry per choice: dropped for choice 0 only.
    agg.add(chunk({ contentDelta: "a", logprobs: lp("a"), finishReason: FinishReason.FINISH_REASON_STOP }));
    agg.add(chunk({ choiceIndex: 1, finishReason: FinishReason.FINISH_REASON_LENGTH }));
    const body = agg.completion(IDENT, openaiUsage(1, 3)) as {
      system_fingerprint: string;
      choices: { index: number; message: { content: string }; finish_reason: string; logprobs: unknown }[];
    };
    expect(body.system_fingerprint).to.equal("fp");
    expect(body.choices.map((c) => [c.index, c.message.content, c.finish_reason])).to.deep.equal([
      [0, "Aa", "stop"],
      [1, "B", "length"],
      [2, "", "stop"],
    ]);
    const tokens = (i: number) =>
      (body.choices[i]?.logprobs as { content: { token: string }[] } | undefined)?.content.map(
        (t) => t.token,
      );
    expect(tokens(0)).to.deep.equal(["A"]);
    expect(tokens(1)).to.deep.equal(["B"]);
  });
});
