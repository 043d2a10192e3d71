// A completed answer (chat, streamed or not; legacy completion; embeddings)
// ends only once its usage event is durable (in the ledger or the spool): a
// router killed right after a user received an answer has counted it. The router's sink is held here, so the test sees
// the answer wait; released, the answer ends with the usage recorded.
import { setTimeout as delay } from "node:timers/promises";
import { expect } from "chai";
import OpenAI from "openai";
import { Registry } from "prom-client";
import { silentLogger } from "../../common/logger.js";
import { type HandOff, handOffDurably } from "../../router/api/chat-usage.js";
import { ApiMetrics } from "../../router/metrics.js";
import type { UsageEvent } from "../../router/usage/event.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";

const MODEL = "durable-model";
const EMBED = "durable-embed";
/** How long an answer is watched not ending while its event is held (no timing is asserted the other way). */
const WATCH_MS = 300;

/** Settles to true once `p` settles; read `state.done` at any time. */
function watch(p: Promise<unknown>): { done: boolean } {
  const state = { done: false };
  void p.then(
    () => {
      state.done = true;
    },
    () => {
      state.done = true;
    },
  );
  return state;
}

describe("api: an answer ends only once its usage is durable", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;
  let client: OpenAI;

  before(async () => {
    // No key store: served without API keys. Never cut short: a held answer waits for the release.
    router = await startRouter({ chat: { usageDurableWaitMs: 60_000 } });
    client = new OpenAI({ apiKey: "unused", baseURL: router.baseURL, maxRetries: 0 });
    backend = await startOpenAIBackend({ models: [MODEL, EMBED], tokens: 5 });
    miner = await startMiner(router, backend.url, {
      extraArgs: ["--completion-models", MODEL, "--embedding-models", EMBED],
    });
  });
  afterEach(() => {
    router.usage.releaseDurability();
  });
  after(async () => {
    await miner?.kill();
    await router?.close();
    await backend?.close();
  });

  /** Holds the sink, sends `ask`, and checks the answer waits for the release after its event is recorded. */
  async function heldUntilReleased<T>(ask: () => Promise<T>): Promise<{ answer: T; event: UsageEvent }> {
    const before = router.usage.events.length;
    router.usage.holdDurability();
    const answer = ask();
    const state = watch(answer);
    const event = (await router.usage.waitFor(before + 1))[before] as UsageEvent;
    await delay(WATCH_MS);
    expect(state.done, "the answer ended before its usage was durable").to.equal(false);
    router.usage.releaseDurability();
    return { answer: await answer, event };
  }

  it("holds a JSON chat answer until its usage event is durable", async () => {
    const { answer, event } = await heldUntilReleased(() =>
      client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hi" }] }),
    );
    expect(event.outcome).to.equal("completed");
    expect(answer.usage?.total_tokens).to.equal(event.promptTokens + event.completionTokens);
  });

  it("streams a chat answer's text at once, and holds only its end until the usage is durable", async () => {
    const before = router.usage.events.length;
    router.usage.holdDurability();
    const stream = await client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "hello" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage = 0;
    const reading = (async () => {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        usage += chunk.usage?.total_tokens ?? 0;
      }
    })();
    const state = watch(reading);
    const event = (await router.usage.waitFor(before + 1))[before] as UsageEvent;
    await delay(WATCH_MS);
    expect(state.done, "the stream ended before its usage was durable").to.equal(false);
    expect(text, "the answer's text arrived while its end waited").to.not.equal("");
    expect(usage, "no usage chunk before the end").to.equal(0);
    router.usage.releaseDurability();
    await reading;
    expect(usage).to.equal(event.promptTokens + event.completionTokens);
  });

  it("holds a legacy completion until its usage event is durable", async () => {
    const { answer, event } = await heldUntilReleased(() =>
      client.completions.create({ model: MODEL, prompt: "once upon a time" }),
    );
    expect(answer.usage?.total_tokens).to.equal(event.promptTokens + event.completionTokens);
  });

  it("holds embeddings until their usage event is durable", async () => {
    const { answer, event } = await heldUntilReleased(() =>
      client.embeddings.create({ model: EMBED, input: ["one", "two"] }),
    );
    expect(answer.data).to.have.length(2);
    expect(answer.usage.prompt_tokens).to.equal(event.promptTokens);
  });

  it("ends the answer after the bound when the sink never makes the event durable", async () => {
    const d = {
      usage: { record: () => {}, recordDurably: () => new Promise<void>(() => {}) },
      metrics: new ApiMetrics(new Registry(), { sessions: () => [] }),
      logger: silentLogger(),
      clock: Date.now,
    };
    const event = { ...router.usage.events[0] } as UsageEvent;
    const st: { handed?: HandOff } = {};
    const durable = handOffDurably(d, 20, st, (dd) => {
      dd.usage.record(event);
      return {
        credited: { promptTokens: 1, completionTokens: 1, clamped: false },
        recorded: true,
        chargedMicros: 0,
      };
    });
    expect(st.handed?.recorded).to.equal(true);
    // Resolves (never hangs) although the sink never answers.
    await durable;
  });
});
