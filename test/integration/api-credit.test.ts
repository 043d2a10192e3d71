import { expect } from "chai";
import OpenAI from "openai";
import { DEFAULT_ENCODING, Encodings } from "../../common/tokens/encodings.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import { countRequest } from "../../router/usage/token-credit.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { backendTokens, type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";

const MODEL = "test-model";

describe("credit follows the router's own token count (real miner, hostile backend)", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;
  let client: OpenAI;
  let count: (t: string) => number;

  before(async () => {
    router = await startRouter();
    backend = await startOpenAIBackend({ models: [MODEL] });
    miner = await startMiner(router, backend.url);
    client = new OpenAI({ apiKey: "unused", baseURL: router.baseURL, maxRetries: 0 });
    const encodings = new Encodings();
    count = await encodings.load(DEFAULT_ENCODING);
  });
  after(async () => {
    await miner?.kill();
    await router?.close();
    await backend?.close();
  });

  /** The router's count of a one-message request and its answer. */
  function routerCount(prompt: string, answer: string) {
    const chat = ChatRequest.fromPartial({ messages: [{ role: "user", content: prompt }] });
    return countRequest(chat, { content: answer, reasoning: "", tools: "" }, count);
  }

  for (const stream of [false, true]) {
    it(`${stream ? "streaming" : "non-streaming"}: a backend reporting 20× its usage is credited the router's count plus the allowances`, async () => {
      // A long, real prompt: the old bound (bytes) allowed ~4× the real tokens here.
      const prompt = `[[backend tokens=30 inflate=20]] ${"The quick brown fox jumps over the lazy dog. ".repeat(400)}`;
      const before = router.usage.events.length;
      let content = "";
      let usage: OpenAI.CompletionUsage | undefined;
      if (stream) {
        const s = await client.chat.completions.create({
          model: MODEL,
          messages: [{ role: "user", content: prompt }],
          stream: true,
          stream_options: { include_usage: true },
        });
        for await (const c of s) {
          content += c.choices[0]?.delta.content ?? "";
          usage = c.usage ?? usage;
        }
      } else {
        const r = await client.chat.completions.create({
          model: MODEL,
          messages: [{ role: "user", content: prompt }],
        });
        content = r.choices[0]?.message.content ?? "";
        usage = r.usage;
      }
      expect(content).to.equal(backendTokens(prompt, 30).join(""));
      const counted = routerCount(prompt, content);
      const credit = {
        promptTokens: counted.promptTokens + 8 * 1 + 16,
        completionTokens: counted.completionTokens + 1,
      };
      const reported = backend.chatRequests().at(-1);
      expect((reported?.promptTokens ?? 0) * 20).to.be.greaterThan(credit.promptTokens * 10);
      // The user's usage and the miner's credit are the bounded figures, not the claim.
      expect(usage?.prompt_tokens).to.equal(credit.promptTokens);
      expect(usage?.completion_tokens).to.equal(credit.completionTokens);
      const ev = (await router.usage.waitFor(before + 1)).at(-1);
      expect(ev).to.include({ minerHotkey: miner.hotkey, ...credit, outcome: "completed" });
    });
  }

  it("an honest report below the router's count is credited as reported", async () => {
    const prompt = "[[backend tokens=12]] Say something short.";
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: prompt }],
    });
    const reported = backend.chatRequests().at(-1);
    expect(r.usage).to.deep.equal({
      prompt_tokens: reported?.promptTokens,
      completion_tokens: reported?.completionTokens,
      total_tokens: (reported?.promptTokens ?? 0) + (reported?.completionTokens ?? 0),
    });
  });

  it("a backend that breaks the stream mid-answer is credited nothing, and the failure is recorded", async () => {
    const before = router.usage.events.length;
    const prompt = "[[backend tokens=40 delay=10 fault=close-mid-stream after=10 inflate=5]] tell me a story";
    let caught: unknown;
    try {
      const s = await client.chat.completions.create({
        model: MODEL,
        messages: [{ role: "user", content: prompt }],
        stream: true,
      });
      for await (const _ of s) {
        // read until the error
      }
    } catch (err) {
      caught = err;
    }
    expect(caught, "the user sees an error, not a short answer").to.be.instanceOf(Error);
    const ev = (await router.usage.waitFor(before + 1)).at(-1);
    expect(ev).to.include({
      minerHotkey: miner.hotkey,
      outcome: "failed",
      promptTokens: 0,
      completionTokens: 0,
    });
  });
});
