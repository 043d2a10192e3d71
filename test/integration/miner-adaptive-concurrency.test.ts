/**
 * The miner's learned concurrency end to end: a real router (hub and
 * Business API), a real in-process miner dialling it over gRPC and a real
 * HTTP backend, loaded by concurrent HTTP clients. With a backend that keeps
 * up, the advertised concurrency grows past its start of 8 and the router
 * sends that many at once; with a backend that serves a few at a time and
 * queues the rest (as Ollama and llama.cpp do), it comes down to about its
 * slots. No client sees an error either way.
 */
import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { DEFAULT_INITIAL_CONCURRENCY } from "../../miner/adaptive-concurrency.js";
import { Miner } from "../../miner/miner.js";
import { MemoryRouterPins } from "../../miner/tunnel/router-pins.js";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { throwawayHotkey } from "../support/keys.js";
import {
  type OpenAIBackend,
  type OpenAIBackendOptions,
  startOpenAIBackend,
} from "../support/openai-backend.js";
import { pollUntil } from "../support/poll.js";

const MODEL = "test-model";

describe("miner: learned concurrency (real router, miner and HTTP backend)", function () {
  this.timeout(60_000);
  let hotkey: Hotkey;
  let backend: OpenAIBackend;
  let router: RouterUnderTest;
  let miner: Miner;

  before(async () => {
    hotkey = await throwawayHotkey();
  });
  afterEach(async () => {
    await miner?.stop();
    await router?.close();
    await backend?.close();
  });

  async function start(backendOptions: OpenAIBackendOptions, maxConcurrency: number): Promise<void> {
    backend = await startOpenAIBackend({ models: [MODEL], ...backendOptions });
    router = await startRouter();
    miner = new Miner(
      {
        router: [router.grpcUrl],
        backend: backend.url,
        backendKey: undefined,
        models: [],
        maxConcurrency,
        contextLength: 0,
        transport: "grpc",
        healthIntervalMs: 60_000,
        connectTimeoutMs: 2000,
      },
      { hotkey, routerPins: new MemoryRouterPins() },
    );
    await miner.start();
    await miner.tunnels[0]?.waitFor((s) => s.state === "connected");
  }

  /** What the router sees the miner advertise for the model. */
  const advertised = () => router.hub.sessions()[0]?.models.find((m) => m.id === MODEL)?.maxConcurrency ?? 0;

  /** `clients` loops sending chat requests back to back until `done()`; every answer must be a 200. */
  async function load(clients: number, stream: boolean, done: () => boolean): Promise<number> {
    let served = 0;
    const failures: string[] = [];
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        while (!done() && failures.length === 0) {
          const res = await fetch(`${router.baseURL}/chat/completions`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({
              model: MODEL,
              stream,
              messages: [{ role: "user", content: `client ${c}` }],
            }),
          });
          const text = await res.text();
          if (res.status !== 200) failures.push(`${res.status} ${text}`);
          else served++;
        }
      }),
    );
    expect(failures, "answers that were not 200").to.deep.equal([]);
    return served;
  }

  it("grows past its start while the backend keeps up, and the router uses the room", async () => {
    // 100 ms per answer: the backend's time, not the tunnel's, is what keeps a slot busy (as with
    // any real model), so the miner itself sees the requests the router has in flight.
    await start({ tokens: 5, tokenDelayMs: 20 }, 64);
    expect(advertised()).to.equal(DEFAULT_INITIAL_CONCURRENCY);
    const deadline = Date.now() + 30_000;
    const served = await load(32, true, () => advertised() >= 16 || Date.now() > deadline);
    expect(advertised(), `advertised after ${served} requests`).to.be.at.least(16);
    expect(miner.concurrency.limit(MODEL)).to.be.at.least(16);
    // The router sent more than the old fixed 8 at once, and the backend answered them together.
    expect(backend.peakServing).to.be.above(DEFAULT_INITIAL_CONCURRENCY);
  });

  it("comes down to about the backend's slots when more requests only queue there", async () => {
    // Three slots, 400 ms per answer: a fourth request waits a whole answer for its first token.
    await start({ tokens: 8, tokenDelayMs: 50, parallel: 3 }, 64);
    const deadline = Date.now() + 30_000;
    await load(12, true, () => miner.concurrency.limit(MODEL) <= 4 || Date.now() > deadline);
    expect(miner.concurrency.limit(MODEL)).to.be.at.most(4);
    await pollUntil(() => advertised() <= 4, { timeoutMs: 5000, what: "the router to hear the lower limit" });
  });
});
