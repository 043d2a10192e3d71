import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI from "openai";
import { ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { ModelCatalogue } from "../../router/catalogue/catalogue.js";
import { checkEntry, defaultEntry } from "../../router/catalogue/entry.js";
import { apiError } from "../support/api-error.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";
import { pollUntil } from "../support/poll.js";

const MODEL = "test-model";
const MSG = [{ role: "user" as const, content: "hi" }];

describe("api: one key cannot crowd out the others", () => {
  let dir: string;
  let keys: ApiKeys;
  let store: FileApiKeyStore;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-key-fair-"));
    store = new FileApiKeyStore(join(dir, "keys.json"));
    keys = new ApiKeys(store);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  describe("per-key concurrency cap", () => {
    let router: RouterUnderTest;
    let backend: OpenAIBackend;
    let miner: MinerProcess;

    before(async () => {
      router = await startRouter({ keyStore: store, maxConcurrentPerKey: 2 });
      // Requests hang until their client goes away: each holds its slot meanwhile.
      backend = await startOpenAIBackend({ models: [MODEL], fault: "hang" });
      miner = await startMiner(router, backend.url, { maxConcurrency: 16 });
    });
    after(async () => {
      await miner.kill();
      await backend.close();
      await router.close();
    });

    it("answers a key's request beyond --max-concurrent-per-key with 429 at once, leaving other keys alone", async () => {
      const limits = { requestsPerMinute: 0, tokensPerMinute: 0 };
      const a = (await keys.create("greedy", limits, Date.now())).key;
      const b = (await keys.create("other", limits, Date.now())).key;
      const stop = new AbortController();
      const greedy = new OpenAI({ apiKey: a, baseURL: router.baseURL, maxRetries: 0 });
      const other = new OpenAI({ apiKey: b, baseURL: router.baseURL, maxRetries: 0 });
      const pending = [greedy, greedy].map((c) =>
        c.chat.completions
          .create({ model: MODEL, messages: MSG }, { signal: stop.signal })
          .catch(() => undefined),
      );
      await pollUntil(() => backend.requests.filter((r) => r.outcome === "open").length === 2, {
        what: "two requests at the backend",
        timeoutMs: 10_000,
      });
      const e = await apiError(greedy.chat.completions.create({ model: MODEL, messages: MSG }));
      expect(e.status).to.equal(429);
      expect(e.message).to.match(/already has 2 requests in progress \(at most 2 at once\)/);
      expect(e.headers?.get("retry-after")).to.equal("1");
      // Another key is served meanwhile.
      pending.push(
        other.chat.completions
          .create({ model: MODEL, messages: MSG }, { signal: stop.signal })
          .catch(() => undefined),
      );
      await pollUntil(() => backend.requests.filter((r) => r.outcome === "open").length === 3, {
        what: "the other key's request at the backend",
        timeoutMs: 10_000,
      });
      stop.abort();
      await Promise.all(pending);
      // Slots come back once requests end.
      await pollUntil(() => backend.requests.every((r) => r.outcome !== "open"), {
        what: "requests to end",
        timeoutMs: 10_000,
      });
      const again = new AbortController();
      const next = greedy.chat.completions
        .create({ model: MODEL, messages: MSG }, { signal: again.signal })
        .catch(() => undefined);
      await pollUntil(() => backend.requests.filter((r) => r.outcome === "open").length === 1, {
        what: "the key's next request at the backend",
        timeoutMs: 10_000,
      });
      again.abort();
      await next;
    });
  });

  it("requests refused for want of capacity (503) do not count against the key's request limit", async () => {
    const entry = checkEntry({ ...defaultEntry("idle-model", 1) });
    const router = await startRouter({ keyStore: store, catalogue: new ModelCatalogue([entry], false) });
    try {
      const k = (await keys.create("patient", { requestsPerMinute: 2, tokensPerMinute: 0 }, Date.now())).key;
      const client = new OpenAI({ apiKey: k, baseURL: router.baseURL, maxRetries: 0 });
      for (let i = 0; i < 5; i++) {
        const e = await apiError(client.chat.completions.create({ model: "idle-model", messages: MSG }));
        expect(e.status, `attempt ${i}`).to.equal(503);
      }
      // Both requests of the minute are still there: the listing counts one, then one more is left.
      const page = await client.models.list().withResponse();
      expect(page.response.headers.get("x-ratelimit-remaining-requests")).to.equal("1");
    } finally {
      await router.close();
    }
  });

  it("completions and embeddings refused for want of capacity (503) do not count against the key's request limit either", async () => {
    const entry = checkEntry({ ...defaultEntry("idle-model", 1) });
    const router = await startRouter({ keyStore: store, catalogue: new ModelCatalogue([entry], false) });
    try {
      const k = (await keys.create("patient-kinds", { requestsPerMinute: 2, tokensPerMinute: 0 }, Date.now()))
        .key;
      const client = new OpenAI({ apiKey: k, baseURL: router.baseURL, maxRetries: 0 });
      for (let i = 0; i < 3; i++) {
        const c = await apiError(client.completions.create({ model: "idle-model", prompt: "hi" }));
        expect(c.status, `completions ${i}`).to.equal(503);
        expect(c.message).to.match(/No miner can serve completions of "idle-model"/);
        const e = await apiError(client.embeddings.create({ model: "idle-model", input: "hi" }));
        expect(e.status, `embeddings ${i}`).to.equal(503);
      }
      const page = await client.models.list().withResponse();
      expect(page.response.headers.get("x-ratelimit-remaining-requests")).to.equal("1");
    } finally {
      await router.close();
    }
  });
});
