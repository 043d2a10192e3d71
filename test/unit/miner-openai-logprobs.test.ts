import { expect } from "chai";
import { MAX_LOGPROBS_PER_CHUNK } from "../../common/chunk-logprobs.js";
import { ChatRequest, FinishReason, type TokenLogprob } from "../../gen/tensorclaw/v1/chat.js";
import type { BackendEvent } from "../../miner/backend/backend.js";
import { eventsFromChunk, eventsFromCompletion } from "../../miner/backend/openai-chunk.js";
import {
  type DeltaEvent,
  logprobsOf,
  logprobsWant,
  splitDelta,
} from "../../miner/backend/openai-logprobs.js";
import { openAIRequestBody } from "../../miner/backend/openai-request-body.js";

/** An OpenAI logprobs item, as a backend sends it. */
function item(token: string, logprob: number, top: [string, number][] = []) {
  return {
    token,
    logprob,
    bytes: Array.from(Buffer.from(token)),
    top_logprobs: top.map(([t, l]) => ({ token: t, logprob: l, bytes: null })),
  };
}

function streamed(content: string, items: unknown, finish: string | null = null) {
  return { choices: [{ index: 0, delta: { content }, logprobs: items, finish_reason: finish }] };
}

function deltas(evs: BackendEvent[]): DeltaEvent[] {
  return evs.filter((e): e is DeltaEvent => e.type === "delta");
}

describe("miner OpenAI logprobs", () => {
  describe("request body", () => {
    it("forwards logprobs and top_logprobs (at most 20), top_logprobs only with logprobs true", () => {
      const body = (p: Partial<ChatRequest>) =>
        openAIRequestBody("m", ChatRequest.fromPartial({ messages: [{ role: "user", content: "x" }], ...p }));
      expect(body({ logprobs: true, topLogprobs: 3 })).to.include({ logprobs: true, top_logprobs: 3 });
      expect(body({ logprobs: true, topLogprobs: 99 })).to.include({ top_logprobs: 20 });
      expect(body({ logprobs: false, topLogprobs: 3 })).to.include({ logprobs: false });
      expect(body({ logprobs: false, topLogprobs: 3 })).not.to.have.property("top_logprobs");
      expect(body({})).not.to.have.property("logprobs");
    });

    it("reads what the sent body asks for", () => {
      expect(logprobsWant({ logprobs: true, top_logprobs: 5 })).to.deep.equal({ top: 5 });
      expect(logprobsWant({ logprobs: true })).to.deep.equal({ top: 0 });
      expect(logprobsWant({ logprobs: true, top_logprobs: 50 })).to.deep.equal({ top: 20 });
      expect(logprobsWant({ logprobs: true, top_logprobs: "3" })).to.deep.equal({ top: 0 });
      expect(logprobsWant({ logprobs: false, top_logprobs: 5 })).to.equal(undefined);
      expect(logprobsWant({})).to.equal(undefined);
    });
  });

  describe("reading a choice's logprobs", () => {
    it("takes tokens and values, and at most the alternatives asked for", () => {
      const got = logprobsOf(
        {
          content: [
            item("Hi", -0.25, [
              ["Hi", -0.25],
              ["Hey", -2],
              ["Yo", -3],
            ]),
          ],
        },
        { top: 2 },
      );
      expect(got).to.deep.equal([
        {
          token: "Hi",
          logprob: -0.25,
          topLogprobs: [
            { token: "Hi", logprob: -0.25 },
            { token: "Hey", logprob: -2 },
          ],
        },
      ]);
    });

    it("keeps nothing when the request did not ask, or the backend sent none", () => {
      expect(logprobsOf({ content: [item("a", -1)] }, undefined)).to.deep.equal([]);
      for (const v of [null, undefined, 3, "x", [], {}, { content: null }, { content: "a" }]) {
        expect(logprobsOf(v, { top: 1 }), JSON.stringify(v)).to.deep.equal([]);
      }
    });

    it("skips malformed entries and alternatives, and bounds values to at most 0", () => {
      const got = logprobsOf(
        {
          content: [
            null,
            { token: 5, logprob: -1 },
            { token: "a", logprob: "-1" },
            { token: "b" },
            { token: "c", logprob: 0.001, top_logprobs: "nope" },
            {
              token: "d",
              logprob: -1e9,
              top_logprobs: [null, { token: "d" }, { token: "d", logprob: -1e9 }, { token: "e", logprob: 2 }],
            },
          ],
        },
        { top: 5 },
      );
      expect(got).to.deep.equal([
        { token: "c", logprob: 0, topLogprobs: [] },
        {
          token: "d",
          logprob: -9999,
          topLogprobs: [
            { token: "d", logprob: -9999 },
            { token: "e", logprob: 0 },
          ],
        },
      ]);
    });
  });

  describe("events", () => {
    it("a streamed chunk's logprobs ride on its delta, only when asked", () => {
      const doc = streamed("Hi", { content: [item("Hi", -0.5, [["Hi", -0.5]])] });
      expect(eventsFromChunk(doc, { top: 1 })).to.deep.equal([
        {
          type: "delta",
          content: "Hi",
          reasoning: "",
          toolCalls: [],
          finishReason: FinishReason.FINISH_REASON_UNSPECIFIED,
          logprobs: [{ token: "Hi", logprob: -0.5, topLogprobs: [{ token: "Hi", logprob: -0.5 }] }],
        },
      ]);
      expect(deltas(eventsFromChunk(doc))[0]).not.to.have.property("logprobs");
    });

    it("a streamed chunk that carries only logprobs (text held back) still becomes a delta", () => {
      const [d] = deltas(eventsFromChunk(streamed("", { content: [item("\uFFFD", -1)] }), { top: 0 }));
      expect(d?.content).to.equal("");
      expect(d?.logprobs).to.deep.equal([{ token: "\uFFFD", logprob: -1, topLogprobs: [] }]);
    });

    it("a whole completion's logprobs are split into deltas of at most the per-chunk limit", () => {
      const n = MAX_LOGPROBS_PER_CHUNK * 2 + 3;
      const tokens = Array.from({ length: n }, (_, i) => ` w${i}`);
      const evs = eventsFromCompletion(
        {
          choices: [
            {
              message: { role: "assistant", content: tokens.join(""), reasoning_content: "hmm" },
              logprobs: { content: tokens.map((t) => item(t, -1)) },
              finish_reason: "length",
            },
          ],
          usage: { prompt_tokens: 1, completion_tokens: n },
        },
        { top: 0 },
      );
      const ds = deltas(evs);
      expect(ds.map((d) => d.logprobs?.length)).to.deep.equal([
        MAX_LOGPROBS_PER_CHUNK,
        MAX_LOGPROBS_PER_CHUNK,
        3,
      ]);
      // Each piece's text is what its tokens spell.
      for (const d of ds) expect(d.content).to.equal(d.logprobs?.map((l) => l.token).join(""));
      expect(ds.map((d) => d.reasoning)).to.deep.equal(["hmm", "", ""]);
      expect(ds.map((d) => d.finishReason)).to.deep.equal([0, 0, FinishReason.FINISH_REASON_LENGTH]);
      expect(evs.at(-1)).to.deep.equal({ type: "usage", promptTokens: 1, completionTokens: n });
    });
  });

  describe("splitting a delta", () => {
    const lp = (t: string): TokenLogprob => ({ token: t, logprob: -1, topLogprobs: [] });
    const base: DeltaEvent = {
      type: "delta",
      content: "",
      reasoning: "r",
      toolCalls: [{ index: 0, id: "c", type: "function", functionName: "f", argumentsDelta: "{}" }],
      finishReason: FinishReason.FINISH_REASON_STOP,
    };

    it("leaves a delta within the limit as it is", () => {
      const ev = { ...base, content: "ab", logprobs: [lp("a"), lp("b")] };
      expect(splitDelta(ev)).to.deep.equal([ev]);
    });

    it("when tokens do not spell the text, keeps text and logprobs whole and in order", () => {
      const n = MAX_LOGPROBS_PER_CHUNK * 3;
      const entries = Array.from({ length: n }, (_, i) => lp(i === MAX_LOGPROBS_PER_CHUNK + 5 ? "?" : "x"));
      const content = "x".repeat(n);
      const parts = splitDelta({ ...base, content, logprobs: entries });
      expect(parts).to.have.length(3);
      expect(parts.map((p) => p.content.length)).to.deep.equal([
        MAX_LOGPROBS_PER_CHUNK,
        n - MAX_LOGPROBS_PER_CHUNK,
        0,
      ]);
      expect(parts.map((p) => p.content).join("")).to.equal(content);
      expect(parts.flatMap((p) => p.logprobs ?? [])).to.deep.equal(entries);
      expect(parts.map((p) => p.toolCalls.length)).to.deep.equal([0, 0, 1]);
      expect(parts.map((p) => p.finishReason)).to.deep.equal([0, 0, FinishReason.FINISH_REASON_STOP]);
    });
  });
});
