/**
 * The queue-depth gauges: a request counts as waiting for a miner from its
 * admission to its dispatch and again between failover attempts, never
 * after; in flight per model while a miner serves it. Read at the exact
 * moments that matter (inside the hub's dispatch), so nothing depends on
 * timing.
 */
import { expect } from "chai";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { pollUntil } from "../support/poll.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { FakeMiner } from "../support/tunnel-fake-miner.js";

const MODEL = "queue-model";

describe("api metrics: requests waiting for a miner, in flight per model", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  const tunnels: RawTunnelClient[] = [];
  /** Requests seen by either miner: the first of each pair fails before output, the next is served. */
  let seen = 0;
  let hang = false;
  /** The gauge's value at each dispatch. */
  const atDispatch: number[] = [];

  async function gauge(name: string, labels: Record<string, string> = {}): Promise<number> {
    const m = await router.registry.getSingleMetric(name)?.get();
    const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
    return v?.value ?? 0;
  }

  before(async () => {
    router = await startRouter({ chat: { requestTimeoutMs: 5000, keepAliveMs: 0 } });
    const hub = router.hub;
    const dispatch = hub.dispatch.bind(hub);
    hub.dispatch = (sessionId, model, chat, opts) => {
      // The gauge's value at this very moment: prom-client keeps it in `hashMap` (get() is async).
      const g = router.registry.getSingleMetric("tensorclaw_api_requests_waiting") as unknown as {
        hashMap: Record<string, { value: number }>;
      };
      atDispatch.push(Object.values(g.hashMap)[0]?.value ?? 0);
      return dispatch(sessionId, model, chat, opts);
    };
    for (let i = 0; i < 2; i++) {
      const t = await RawTunnelClient.open("grpc", { grpc: router.grpcUrl.slice("grpc://".length), ws: "" });
      tunnels.push(t);
      const v = await t.handshake(await throwawayHotkey(), {
        models: [{ id: MODEL, maxConcurrency: 4, contextLength: 0, kinds: [] }],
      });
      if (v.accept === undefined) throw new Error(`refused: ${v.reject?.message}`);
      new FakeMiner(t, {
        plan: () => {
          if (hang) return { chunks: ["x"], end: "hang" };
          return seen++ % 2 === 0
            ? {
                chunks: [],
                end: { error: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR, message: "boom" },
              }
            : { chunks: ["a", "b"], end: { usage: [1, 2] } };
        },
      });
    }
    await waitForSessions(router.hub, (s) => s.length === 2, "two raw miners");
  });
  after(async () => {
    for (const t of tunnels) t.destroy();
    await router?.close();
  });

  function ask(): Promise<Response> {
    return fetch(`${router.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true }),
    });
  }

  it("counts the request as waiting at its first dispatch and at its failover, and not once served", async () => {
    const res = await ask();
    expect(res.status).to.equal(200);
    await res.text();
    expect(atDispatch).to.deep.equal([1, 1]);
    expect(await gauge("tensorclaw_api_requests_waiting")).to.equal(0);
    expect(await gauge("tensorclaw_api_model_in_flight_requests", { model: MODEL })).to.equal(0);
  });

  it("counts a request being served in flight for its model, and never as waiting", async () => {
    hang = true;
    const abort = new AbortController();
    const res = await fetch(`${router.baseURL}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true }),
      signal: abort.signal,
    });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read(); // the first chunk: a miner is serving it
    expect(await gauge("tensorclaw_api_model_in_flight_requests", { model: MODEL })).to.equal(1);
    expect(await gauge("tensorclaw_api_requests_waiting")).to.equal(0);
    abort.abort();
    await pollUntil(
      async () => (await gauge("tensorclaw_api_model_in_flight_requests", { model: MODEL })) === 0,
      {
        timeoutMs: 5000,
        what: "the request to end",
      },
    );
  });
});
