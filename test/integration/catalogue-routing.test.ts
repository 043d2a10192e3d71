import { expect } from "chai";
import OpenAI, { APIError } from "openai";
import { ModelCatalogue } from "../../router/catalogue/catalogue.js";
import { checkEntry, defaultEntry } from "../../router/catalogue/entry.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";
import { pollUntil } from "../support/poll.js";

const KNOWN = checkEntry({
  ...defaultEntry("known-model", 2),
  contextLength: 32_768,
  pricePromptPerM: 0.5,
  priceCompletionPerM: 1.5,
  aliases: ["km"],
});

describe("routing by the model catalogue (real miner, openai client)", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;
  let client: OpenAI;

  before(async () => {
    router = await startRouter({ catalogue: new ModelCatalogue([KNOWN], false) });
    backend = await startOpenAIBackend({ models: ["known-model", "stray-model"] });
    miner = await startMiner(router, backend.url, { extraArgs: ["--log-level", "info"] });
    client = new OpenAI({ apiKey: "unused", baseURL: router.baseURL, maxRetries: 0 });
  });
  after(async () => {
    await miner?.kill();
    await router?.close();
    await backend?.close();
  });

  it("routes only catalogue models and tells the miner which offered ids it ignores", async () => {
    const [s] = router.hub.sessions();
    expect(s?.models.map((m) => m.id)).to.deep.equal(["known-model"]);
    await pollUntil(() => /ignores some offered models/.test(miner.stderr()), {
      what: "the miner's warning",
      timeoutMs: 10_000,
    });
    expect(miner.stderr()).to.match(/stray-model/);
    let caught: unknown;
    try {
      await client.chat.completions.create({
        model: "stray-model",
        messages: [{ role: "user", content: "hi" }],
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(APIError);
    expect((caught as APIError).status).to.equal(404);
    expect((caught as APIError).code).to.equal("model_not_found");
    expect(
      backend.chatRequests().some((r) => (r.body as { model?: string }).model === "stray-model"),
    ).to.equal(false);
  });

  it("serves an alias under the catalogue id, and counts usage under it", async () => {
    const before = router.usage.events.length;
    const res = await client.chat.completions.create({
      model: "km",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(res.model).to.equal("known-model");
    expect((backend.chatRequests().at(-1)?.body as { model?: string } | undefined)?.model).to.equal(
      "known-model",
    );
    const events = await router.usage.waitFor(before + 1);
    expect(events.at(-1)?.model).to.equal("known-model");
  });

  it("answers 503 with retry-after, not 404, for a catalogue model that no miner serves right now", async () => {
    await router.setCatalogue(new ModelCatalogue([KNOWN, defaultEntry("idle-model")], false));
    let caught: unknown;
    try {
      await client.chat.completions.create({
        model: "idle-model",
        messages: [{ role: "user", content: "hi" }],
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(APIError);
    expect((caught as APIError).status).to.equal(503);
    expect((caught as APIError).headers?.get("retry-after")).to.match(/^\d+$/);
    await router.setCatalogue(new ModelCatalogue([KNOWN], false));
  });

  it("lists catalogue models with context, prices, aliases and live miners", async () => {
    const list = await client.models.list();
    const models = list.data as unknown as Record<string, unknown>[];
    expect(models.map((m) => m.id)).to.deep.equal(["known-model"]);
    expect(models[0]).to.deep.include({
      context_length: 32_768,
      pricing: { prompt: "0.0000005", completion: "0.0000015" },
      aliases: ["km"],
      miners: 1,
    });
    const one = (await client.models.retrieve("km")) as unknown as Record<string, unknown>;
    expect(one.id).to.equal("known-model");
  });

  it("picks up a catalogue change while running: the stray model becomes routable", async () => {
    await router.setCatalogue(new ModelCatalogue([KNOWN, defaultEntry("stray-model")], false));
    await waitForSessions(router.hub, (ss) => ss[0]?.models.length === 2);
    const res = await client.chat.completions.create({
      model: "stray-model",
      messages: [{ role: "user", content: "hi" }],
    });
    expect(res.model).to.equal("stray-model");
    await pollUntil(() => /now routes every offered model/.test(miner.stderr()), {
      what: "the miner's notice",
      timeoutMs: 10_000,
    });
  });
});
