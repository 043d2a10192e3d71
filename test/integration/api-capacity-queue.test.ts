/**
 * The capacity queue end to end: a real router, a real `tensorclaw miner`
 * child process and a real OpenAI-compatible backend behind it, driven by
 * the official `openai` client. While every slot of the model is taken,
 * requests wait for one instead of failing; the queue's bound and its
 * timeout answer 503 with retry-after; a client that leaves while queued
 * is gone from the queue at once and never reaches the miner; slots go
 * round-robin across API keys.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI from "openai";
import { ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { apiError } from "../support/api-error.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { backendTokens, type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";
import { pollUntil } from "../support/poll.js";

const MODEL = "test-model";
const HANG = "[[backend fault=hang]]";

/** A metric's value for the labels given (0 when the series does not exist yet). */
async function metric(router: RouterUnderTest, name: string, labels: Record<string, string> = {}) {
  const m = await router.registry.getSingleMetric(name)?.get();
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

/** How many waits in the model's queue ended with `outcome` (the wait histogram's count). */
async function waits(router: RouterUnderTest, outcome: string): Promise<number> {
  const m = await router.registry.getSingleMetric("tensorclaw_api_queue_wait_seconds")?.get();
  const v = m?.values.find(
    (x) =>
      (x as { metricName?: string }).metricName === "tensorclaw_api_queue_wait_seconds_count" &&
      x.labels.model === MODEL &&
      x.labels.outcome === outcome,
  );
  return v?.value ?? 0;
}

/** Resolves once the model's queue holds `n` requests. */
function queueDepth(router: RouterUnderTest, n: number): Promise<true> {
  return pollUntil(
    async () => (await metric(router, "tensorclaw_api_queue_depth", { model: MODEL })) === n || undefined,
    { what: `${n} request(s) queued`, timeoutMs: 20_000, intervalMs: 10 },
  );
}

/** Resolves once the backend has `n` requests open (each holding one of the miner's slots). */
function openAtBackend(backend: OpenAIBackend, n: number): Promise<true> {
  return pollUntil(() => backend.requests.filter((r) => r.outcome === "open").length === n || undefined, {
    what: `${n} request(s) open at the backend`,
    timeoutMs: 20_000,
    intervalMs: 10,
  });
}

/** The text of a message's content as the backend received it, by request. */
function contents(backend: OpenAIBackend): string[] {
  return backend.chatRequests().map((r) => JSON.stringify(r.body));
}

describe("api: the capacity queue (requests wait for a busy model's free slot)", function () {
  this.timeout(120_000);
  let dir: string;
  let keys: ApiKeys;
  let store: FileApiKeyStore;
  let router: RouterUnderTest | undefined;
  let backend: OpenAIBackend | undefined;
  let miner: MinerProcess | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-queue-"));
    store = new FileApiKeyStore(join(dir, "keys.json"));
    keys = new ApiKeys(store);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    await miner?.kill();
    await backend?.close();
    await router?.close();
    miner = undefined;
    backend = undefined;
    router = undefined;
  });

  it("serves 50 concurrent clients through one miner at its default concurrency: no error, every answer whole", async () => {
    // The queue's default bound; a generous wait so a loaded CI machine cannot turn slowness into 503s.
    router = await startRouter({ chat: { queueTimeoutMs: 60_000 } });
    backend = await startOpenAIBackend({ models: [MODEL], tokens: 8, tokenDelayMs: 1 });
    // The miner's default flags: its concurrency learned, from 8 up.
    miner = await startMiner(router, backend.url, { maxConcurrency: "default" });
    const client = new OpenAI({ apiKey: "none", baseURL: router.baseURL, maxRetries: 0 });
    const perClient = 4;
    const answers = await Promise.all(
      Array.from({ length: 50 }, async (_, c) => {
        const out: Array<{ prompt: string; text: string; stream: boolean }> = [];
        for (let i = 0; i < perClient; i++) {
          const prompt = `client ${c} request ${i}`;
          const stream = i % 2 === 1;
          const messages = [{ role: "user" as const, content: prompt }];
          if (stream) {
            let text = "";
            const s = await client.chat.completions.create({ model: MODEL, messages, stream: true });
            for await (const chunk of s) text += chunk.choices[0]?.delta.content ?? "";
            out.push({ prompt, text, stream });
          } else {
            const r = await client.chat.completions.create({ model: MODEL, messages });
            expect(r.choices[0]?.finish_reason).to.equal("stop");
            out.push({ prompt, text: r.choices[0]?.message.content ?? "", stream });
          }
        }
        return out;
      }),
    );
    const all = answers.flat();
    expect(all).to.have.length(50 * perClient);
    for (const a of all) expect(a.text, a.prompt).to.equal(backendTokens(a.prompt, 8).join(""));
    // The miner runs at most 8 at once: most of the 50 waited in the queue, and none was refused.
    expect(await waits(router, "served")).to.be.greaterThan(0);
    expect(
      await metric(router, "tensorclaw_api_queue_rejected_total", { model: MODEL, reason: "full" }),
    ).to.equal(0);
    expect(
      await metric(router, "tensorclaw_api_queue_rejected_total", { model: MODEL, reason: "timeout" }),
    ).to.equal(0);
    expect(await metric(router, "tensorclaw_api_queue_depth", { model: MODEL })).to.equal(0);
    expect(await metric(router, "tensorclaw_api_requests_waiting")).to.equal(0);
  });

  /** A router whose model has one slot (a miner at --max-concurrency 1), with `chat` options. */
  async function oneSlot(chat: { maxQueue?: number; queueTimeoutMs?: number } = {}) {
    const r = await startRouter({ keyStore: store, chat });
    router = r;
    backend = await startOpenAIBackend({ models: [MODEL], tokens: 3 });
    miner = await startMiner(r, backend.url, { maxConcurrency: 1 });
    return { router: r, backend };
  }

  async function keyClient(name: string, requestsPerMinute = 0) {
    const r = router as RouterUnderTest;
    const k = (await keys.create(name, { requestsPerMinute, tokensPerMinute: 0 }, Date.now())).key;
    return new OpenAI({ apiKey: k, baseURL: r.baseURL, maxRetries: 0 });
  }

  /** Sends a chat request that holds on to `stop`; resolves to its answer's text, or the error. */
  function ask(client: OpenAI, content: string, stop?: AbortController) {
    return client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content }] }, { signal: stop?.signal })
      .then(
        (r) => r.choices[0]?.message.content ?? "",
        (err: unknown) => err,
      );
  }

  it("answers the request past --max-queue with 503 and retry-after at once; those queued are served once the slot frees", async () => {
    const { router: r, backend: b } = await oneSlot({ maxQueue: 2, queueTimeoutMs: 60_000 });
    const client = await keyClient("bounded");
    const holder = new AbortController();
    const held = ask(client, `hold ${HANG}`, holder);
    await openAtBackend(b, 1);
    const queued = [ask(client, "queued 1"), ask(client, "queued 2")];
    await queueDepth(r, 2);
    const e = await apiError(
      client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "one too many" }] }),
    );
    expect(e.status).to.equal(503);
    expect((e.error as { code: string }).code).to.equal("no_capacity");
    expect(e.message).to.match(/wait queue is full/);
    expect(Number(e.headers?.get("retry-after"))).to.be.greaterThan(0);
    expect(await metric(r, "tensorclaw_api_queue_rejected_total", { model: MODEL, reason: "full" })).to.equal(
      1,
    );
    expect(contents(b).some((c) => c.includes("one too many"))).to.equal(false);
    // The slot frees when the holder leaves: the two queued requests are served, in turn.
    holder.abort();
    await held;
    expect(await Promise.all(queued)).to.deep.equal([
      backendTokens("queued 1", 3).join(""),
      backendTokens("queued 2", 3).join(""),
    ]);
    expect(await waits(r, "served")).to.equal(2);
    expect(await metric(r, "tensorclaw_api_queue_depth", { model: MODEL })).to.equal(0);
  });

  it("answers a request that found no free slot within --queue-timeout-ms with 503 and retry-after, and gives the key its request back", async () => {
    const { router: r, backend: b } = await oneSlot({ queueTimeoutMs: 300 });
    // Two requests a minute: the holder takes one; the refused one must not take the other.
    const client = await keyClient("patient", 2);
    const holder = new AbortController();
    const held = ask(client, `hold ${HANG}`, holder);
    await openAtBackend(b, 1);
    const e = await apiError(
      client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "late" }] }),
    );
    expect(e.status).to.equal(503);
    expect((e.error as { code: string }).code).to.equal("no_capacity");
    expect(e.message).to.match(/stayed busy/);
    expect(Number(e.headers?.get("retry-after"))).to.be.greaterThan(0);
    expect(
      await metric(r, "tensorclaw_api_queue_rejected_total", { model: MODEL, reason: "timeout" }),
    ).to.equal(1);
    expect(await waits(r, "timeout")).to.equal(1);
    expect(await metric(r, "tensorclaw_api_queue_depth", { model: MODEL })).to.equal(0);
    // The refused request was given back: one of the minute's two is left for this listing.
    const page = await client.models.list().withResponse();
    expect(page.response.headers.get("x-ratelimit-remaining-requests")).to.equal("0");
    expect(contents(b).some((c) => c.includes("late"))).to.equal(false);
    holder.abort();
    await held;
  });

  it("takes a client that hangs up while queued out of the queue at once; the miner never sees its request", async () => {
    const { router: r, backend: b } = await oneSlot({ queueTimeoutMs: 60_000 });
    const client = await keyClient("quitter");
    const holder = new AbortController();
    const held = ask(client, `hold ${HANG}`, holder);
    await openAtBackend(b, 1);
    const quitter = new AbortController();
    const gone = ask(client, "never dispatched", quitter);
    await queueDepth(r, 1);
    quitter.abort();
    await gone;
    await queueDepth(r, 0);
    expect(await waits(r, "cancelled")).to.equal(1);
    // The slot frees; a request sent after the quitter left is the next the backend sees.
    holder.abort();
    await held;
    expect(await ask(client, "after")).to.equal(backendTokens("after", 3).join(""));
    const seen = contents(b);
    expect(seen).to.have.length(2);
    expect(seen.some((c) => c.includes("never dispatched"))).to.equal(false);
    expect(await metric(r, "tensorclaw_api_requests_waiting")).to.equal(0);
  });

  it("hands free slots round-robin across keys: a key with many queued cannot starve a key with one", async () => {
    const { router: r, backend: b } = await oneSlot({ queueTimeoutMs: 60_000 });
    const greedy = await keyClient("greedy-queue");
    const modest = await keyClient("modest-queue");
    const holder = new AbortController();
    const held = ask(greedy, `hold ${HANG}`, holder);
    await openAtBackend(b, 1);
    const pending: Array<Promise<unknown>> = [];
    for (let i = 1; i <= 5; i++) {
      pending.push(ask(greedy, `greedy ${i}`));
      await queueDepth(r, i);
    }
    pending.push(ask(modest, "modest 1"));
    await queueDepth(r, 6);
    holder.abort();
    await held;
    await Promise.all(pending);
    // The order the backend saw them in: the holder, then greedy 1 (its key was first in line),
    // then modest 1 (the other key's turn), then the rest of greedy's.
    const order = contents(b).map((c) => /(hold|greedy \d|modest \d)/.exec(c)?.[1]);
    expect(order).to.deep.equal([
      "hold",
      "greedy 1",
      "modest 1",
      "greedy 2",
      "greedy 3",
      "greedy 4",
      "greedy 5",
    ]);
  });
});
