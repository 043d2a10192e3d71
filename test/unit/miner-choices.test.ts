// The miner's side of `n`, the caller's token limits and system_fingerprint:
// what reaches an OpenAI backend, how its choices come back, and the demo
// backend's own choices.
import { expect } from "chai";
import { ChatRequest, type DeepPartial, FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import type { BackendEvent } from "../../miner/backend/backend.js";
import { DEMO_MODEL_ID, DemoBackend } from "../../miner/backend/demo.js";
import { eventsFromChunk, eventsFromCompletion } from "../../miner/backend/openai-chunk.js";
import { openAIRequestBody } from "../../miner/backend/openai-request-body.js";
import { CompletionTokenCounter, countTextTokens } from "../../miner/backend/token-counter.js";

type Delta = Extract<BackendEvent, { type: "delta" }>;
const chat = (c: DeepPartial<ChatRequest>) =>
  ChatRequest.fromPartial({ messages: [{ role: "user", content: "How do I make bread?" }], ...c });

describe("miner: choices, token limits and fingerprint", () => {
  it("sends max_tokens, max_completion_tokens and n exactly as the user did, and nothing when absent", () => {
    const both = openAIRequestBody("m", chat({ maxTokens: 30, maxCompletionTokens: 20, n: 2 }));
    expect(both).to.include({ max_tokens: 30, max_completion_tokens: 20, n: 2 });
    const only = openAIRequestBody("m", chat({ maxCompletionTokens: 20 }));
    expect(only).to.include({ max_completion_tokens: 20 });
    expect(only).not.to.have.property("max_tokens");
    const none = openAIRequestBody("m", chat({ extraJson: '{"n":5}' }));
    expect(none).not.to.have.any.keys("max_tokens", "max_completion_tokens", "n");
  });

  it("relays every streamed choice asked for with its index and the fingerprint, dropping the rest", () => {
    const evs = eventsFromChunk(
      {
        system_fingerprint: "fp_1",
        choices: [
          { index: 1, delta: { content: "B" }, finish_reason: null },
          { index: 0, delta: { content: "A" }, finish_reason: "stop" },
          { index: 2, delta: { content: "not asked for" }, finish_reason: null },
        ],
      },
      undefined,
      2,
    ) as Delta[];
    expect(
      evs.map((e) => [e.choiceIndex ?? 0, e.content, e.finishReason, e.systemFingerprint]),
    ).to.deep.equal([
      [1, "B", FinishReason.FINISH_REASON_UNSPECIFIED, "fp_1"],
      [0, "A", FinishReason.FINISH_REASON_STOP, "fp_1"],
    ]);
  });

  it("turns a whole answer's choices into one delta each, by index or position", () => {
    const evs = eventsFromCompletion(
      {
        choices: [
          { message: { content: "first" }, finish_reason: "stop" },
          { index: 1, message: { content: "second" }, finish_reason: "length" },
          { index: 7, message: { content: "stray" }, finish_reason: "stop" },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 4 },
      },
      undefined,
      2,
    );
    expect(evs.map((e) => (e.type === "delta" ? [e.choiceIndex ?? 0, e.content] : e.type))).to.deep.equal([
      [0, "first"],
      [1, "second"],
      "usage",
    ]);
  });

  it("counts every choice's tokens on its own when the backend reports no usage", () => {
    const c = new CompletionTokenCounter();
    c.add("Hello", "", "", 0);
    c.add("Good", "", "", 1);
    c.add(" world", "", "", 0);
    c.add("bye", "", "", 1);
    expect(c.total()).to.equal(countTextTokens("Hello world") + countTextTokens("Goodbye"));
  });

  describe("demo backend", () => {
    async function run(c: DeepPartial<ChatRequest>, answerTokens?: number) {
      const demo = new DemoBackend({
        tokenDelayMs: 0,
        ...(answerTokens === undefined ? {} : { answerTokens }),
      });
      const events: BackendEvent[] = [];
      for await (const e of demo.chat(DEMO_MODEL_ID, chat(c), new AbortController().signal)) events.push(e);
      const deltas = events.filter((e): e is Delta => e.type === "delta");
      const texts: string[] = [];
      for (const d of deltas) texts[d.choiceIndex ?? 0] = (texts[d.choiceIndex ?? 0] ?? "") + d.content;
      return { events, deltas, texts };
    }

    it("generates n distinct choices, the same again for the same seed, choice 0 the n = 1 answer", async () => {
      const one = await run({ seed: 5n, maxTokens: 30 });
      const a = await run({ seed: 5n, maxTokens: 30, n: 3 });
      const b = await run({ seed: 5n, maxTokens: 30, n: 3 });
      expect(a.texts).to.have.length(3);
      expect(a.texts).to.deep.equal(b.texts);
      expect(new Set(a.texts).size).to.equal(3);
      expect(a.texts[0]).to.equal(one.texts[0]);
      // Every choice ends with its own finish reason, and usage counts all of them.
      const finished = a.deltas.filter((d) => d.finishReason !== FinishReason.FINISH_REASON_UNSPECIFIED);
      expect(finished.map((d) => d.choiceIndex ?? 0)).to.deep.equal([0, 1, 2]);
      expect(a.events.at(-1)).to.deep.include({ type: "usage", completionTokens: a.deltas.length });
    });

    it("honours the smaller of max_tokens and max_completion_tokens, and its own bound without either", async () => {
      const a = await run({ temperature: 0, maxTokens: 9, maxCompletionTokens: 3 });
      expect(a.deltas).to.have.length(3);
      const b = await run({ temperature: 0, maxCompletionTokens: 2 });
      expect(b.deltas).to.have.length(2);
      const c = await run({ temperature: 0 }, 4);
      expect(c.deltas).to.have.length(4);
      expect(c.deltas.at(-1)?.finishReason).to.equal(FinishReason.FINISH_REASON_LENGTH);
    });
  });
});
