import { expect } from "chai";
import { LOGPROB_FLOOR } from "../../common/chunk-logprobs.js";
import { ChatRequest, FinishReason, type TokenLogprob } from "../../gen/tensorclaw/v1/chat.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import { LogprobsRelay, logprobsAsk } from "../../router/api/openai-logprobs.js";
import { ChunkShaper, CompletionAggregator, openaiUsage } from "../../router/api/openai-response.js";

const IDENT = { id: "chatcmpl-1", created: 1700000000, model: "m" };

function chunk(contentDelta: string, logprobs: TokenLogprob[]): ResponseChunk {
  return {
    requestId: 1,
    contentDelta,
    toolCalls: [],
    finishReason: FinishReason.FINISH_REASON_UNSPECIFIED,
    choiceIndex: 0,
    systemFingerprint: "",
    embeddings: [],
    reasoningDelta: "",
    logprobs,
  };
}

function tok(token: string, logprob: number, alts: [string, number][] = []): TokenLogprob {
  return { token, logprob, topLogprobs: alts.map(([t, l]) => ({ token: t, logprob: l })) };
}

describe("api logprobs: what the caller asked for", () => {
  it("is nothing unless logprobs is true; then top_logprobs (default 0) within the completion ceiling", () => {
    expect(logprobsAsk(ChatRequest.fromPartial({ maxTokens: 9 }), 9)).to.equal(undefined);
    expect(logprobsAsk(ChatRequest.fromPartial({ maxTokens: 9, logprobs: false }), 9)).to.equal(undefined);
    expect(logprobsAsk(ChatRequest.fromPartial({ maxTokens: 9, logprobs: true }), 9)).to.deep.equal({
      top: 0,
      maxEntries: 9,
    });
    expect(
      logprobsAsk(ChatRequest.fromPartial({ maxTokens: 9, logprobs: true, topLogprobs: 4 }), 9),
    ).to.deep.equal({ top: 4, maxEntries: 9 });
  });
});

describe("api logprobs: relay", () => {
  it("shows each token with its UTF-8 bytes and its alternatives, as OpenAI does", () => {
    const r = new LogprobsRelay({ top: 2, maxEntries: 10 });
    expect(
      r.take([
        tok("é€", -0.5, [
          ["é€", -0.5],
          ["e", -1.25],
        ]),
      ]),
    ).to.deep.equal([
      {
        token: "é€",
        logprob: -0.5,
        bytes: [0xc3, 0xa9, 0xe2, 0x82, 0xac],
        top_logprobs: [
          { token: "é€", logprob: -0.5, bytes: [0xc3, 0xa9, 0xe2, 0x82, 0xac] },
          { token: "e", logprob: -1.25, bytes: [0x65] },
        ],
      },
    ]);
  });

  it("keeps only the alternatives asked for, and no more entries than max_tokens over the answer", () => {
    const r = new LogprobsRelay({ top: 1, maxEntries: 3 });
    const alts: [string, number][] = [
      ["a", -1],
      ["b", -2],
      ["c", -3],
    ];
    const first = r.take([tok("a", -1, alts), tok("b", -2, alts)]);
    expect(first.map((t) => t.top_logprobs.map((x) => x.token))).to.deep.equal([["a"], ["a"]]);
    expect(r.take([tok("c", -1), tok("d", -1)]).map((t) => t.token)).to.deep.equal(["c"]);
    expect(r.take([tok("e", -1)])).to.deep.equal([]);
  });

  it("bounds values a miner made up: above 0 becomes 0, NaN and -inf become the floor", () => {
    const r = new LogprobsRelay({ top: 1, maxEntries: 10 });
    const out = r.take([
      tok("a", 0.25, [["a", Number.POSITIVE_INFINITY]]),
      tok("b", Number.NaN, [["b", Number.NEGATIVE_INFINITY]]),
      tok("c", -1e6),
    ]);
    expect(out.map((t) => t.logprob)).to.deep.equal([0, LOGPROB_FLOOR, LOGPROB_FLOOR]);
    expect(out.map((t) => t.top_logprobs[0]?.logprob)).to.deep.equal([0, LOGPROB_FLOOR, undefined]);
    // What goes out is plain JSON: no NaN turned into null on the way.
    expect(JSON.parse(JSON.stringify(out))).to.deep.equal(out);
  });
});

describe("api logprobs: stream chunks and the whole completion", () => {
  it("stream: a chunk with logprobs carries {content, refusal: null}; others carry null", () => {
    const s = new ChunkShaper(IDENT, false, { top: 0, maxEntries: 100 });
    const a = JSON.parse(s.chunk(chunk("Hi", [tok("Hi", -0.5)])));
    expect(a.choices[0].logprobs).to.deep.equal({
      content: [{ token: "Hi", logprob: -0.5, bytes: [72, 105], top_logprobs: [] }],
      refusal: null,
    });
    expect(JSON.parse(s.chunk(chunk("!", []))).choices[0].logprobs).to.equal(null);
    const end = { ...chunk("", []), finishReason: FinishReason.FINISH_REASON_STOP };
    expect(JSON.parse(s.chunk(end)).choices[0].logprobs).to.equal(null);
  });

  it("stream: a caller that did not ask sees null even when the miner sent logprobs", () => {
    const s = new ChunkShaper(IDENT, false);
    expect(JSON.parse(s.chunk(chunk("Hi", [tok("Hi", -0.5)]))).choices[0].logprobs).to.equal(null);
  });

  it("stream: once max_tokens entries were shown, further chunks carry null", () => {
    const s = new ChunkShaper(IDENT, false, { top: 0, maxEntries: 1 });
    expect(JSON.parse(s.chunk(chunk("a", [tok("a", -1)]))).choices[0].logprobs.content).to.have.length(1);
    expect(JSON.parse(s.chunk(chunk("b", [tok("b", -1)]))).choices[0].logprobs).to.equal(null);
  });

  it("whole: every chunk's entries in order; an empty list when asked but none came; null when not asked", () => {
    const agg = new CompletionAggregator({ top: 1, maxEntries: 100 });
    agg.add(chunk("Hel", [tok("Hel", -0.25, [["Hel", -0.25]])]));
    agg.add(chunk("lo", [tok("lo", -0.75, [["lo", -0.75]])]));
    const c = agg.completion(IDENT, openaiUsage(1, 2)) as { choices: { logprobs: unknown }[] };
    expect(c.choices[0]?.logprobs).to.deep.equal({
      content: [
        {
          token: "Hel",
          logprob: -0.25,
          bytes: [72, 101, 108],
          top_logprobs: [{ token: "Hel", logprob: -0.25, bytes: [72, 101, 108] }],
        },
        {
          token: "lo",
          logprob: -0.75,
          bytes: [108, 111],
          top_logprobs: [{ token: "lo", logprob: -0.75, bytes: [108, 111] }],
        },
      ],
      refusal: null,
    });
    const none = new CompletionAggregator({ top: 0, maxEntries: 100 });
    none.add(chunk("x", []));
    const n = none.completion(IDENT, openaiUsage(1, 1)) as { choices: { logprobs: unknown }[] };
    expect(n.choices[0]?.logprobs).to.deep.equal({ content: [], refusal: null });
    const unasked = new CompletionAggregator();
    unasked.add(chunk("x", [tok("x", -1)]));
    const u = unasked.completion(IDENT, openaiUsage(1, 1)) as { choices: { logprobs: unknown }[] };
    expect(u.choices[0]?.logprobs).to.equal(null);
  });
});
