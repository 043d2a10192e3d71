import { expect } from "chai";
import OpenAI from "openai";
import type { Hotkey } from "../../common/identity.js";
import { type MinerFrame, RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { backendTokens, type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";

const MODEL = "test-model";

/**
 * The routing book wired into the chat handler, with real miners: what it
 * measures and how it steers. (Its decisions are tested in depth, without
 * sockets, in test/unit/routing-*.test.ts.)
 */
describe("api routing: the chat handler reports every attempt to the routing book", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  let client: OpenAI;
  const backends: OpenAIBackend[] = [];
  const miners: MinerProcess[] = [];
  const tunnels: RawTunnelClient[] = [];
  const timers: NodeJS.Timeout[] = [];

  beforeEach(async () => {
    router = await startRouter({ chat: { requestTimeoutMs: 8000, keepAliveMs: 0 } });
    client = new OpenAI({ apiKey: "none", baseURL: router.baseURL, maxRetries: 0 });
  });
  afterEach(async () => {
    for (const t of timers.splice(0)) clearTimeout(t);
    for (const t of tunnels.splice(0)) t.destroy();
    for (const m of miners.splice(0)) await m.kill();
    await router.close();
    for (const b of backends.splice(0)) await b.close();
  });

  const stats = (hotkey: string) =>
    router.routing.view().find((v) => v.hotkey === hotkey && v.model === MODEL);
  /** tensorclaw_api_failovers_total for the model. */
  const failovers = async () => {
    const m = await router.registry.getSingleMetric("tensorclaw_api_failovers_total")?.get();
    return m?.values.find((v) => v.labels.model === MODEL)?.value ?? 0;
  };

  async function ask(i: number): Promise<string> {
    const messages = [{ role: "user" as const, content: `q${i}` }];
    if (i % 2 === 1) {
      const r = await client.chat.completions.create({ model: MODEL, messages });
      return r.choices[0]?.message.content ?? "";
    }
    let text = "";
    const stream = await client.chat.completions.create({ model: MODEL, messages, stream: true });
    for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
    return text;
  }

  it("times the first token from dispatch to the first piece of the answer", async () => {
    // The test backend streams `{role, content: ""}` at once (the miner drops it), then a piece every 150 ms.
    const slow = await startOpenAIBackend({ models: [MODEL], tokens: 2, tokenDelayMs: 150 });
    backends.push(slow);
    const m = await startMiner(router, slow.url);
    miners.push(m);
    // Streamed requests only: this backend answers non-streaming ones without the delay.
    for (const i of [0, 2, 4, 6]) expect(await ask(i)).to.equal(backendTokens(`q${i}`, 2).join(""));
    const s = stats(m.hotkey);
    expect(s?.outcomes.served).to.equal(4);
    expect(s?.inFlight).to.equal(0);
    expect(s?.ttftEwmaMs).to.be.at.least(140);
    expect(s?.ttftP50Ms).to.be.at.least(140);
    expect(s?.ttftBaselineMs).to.be.at.least(140);
  });

  /** A hand-written miner tunnel for `key` that answers each request with `serve`. */
  async function scriptedTunnel(
    key: Hotkey,
    serve: (requestId: number, tunnel: RawTunnelClient) => void,
  ): Promise<RawTunnelClient> {
    const tunnel = await RawTunnelClient.open("grpc", {
      grpc: router.grpcUrl.slice("grpc://".length),
      ws: "",
    });
    tunnels.push(tunnel);
    const verdict = await tunnel.handshake(key, {
      models: [{ id: MODEL, maxConcurrency: 10_000, contextLength: 8192, kinds: [] }],
    });
    expect(verdict.accept).to.not.equal(undefined);
    tunnel.onFrame = (f) => {
      if (f.kind?.$case === "request") serve(f.kind.value.requestId, tunnel);
    };
    return tunnel;
  }

  const chunk = (requestId: number, contentDelta: string): MinerFrame => ({
    kind: {
      $case: "chunk",
      value: {
        requestId,
        contentDelta,
        toolCalls: [],
        finishReason: 0,
        choiceIndex: 0,
        systemFingerprint: "",
        embeddings: [],
        reasoningDelta: "",
        logprobs: [],
      },
    },
  });

  it("does not take a miner's instant empty chunk for its first token", async () => {
    const key = await throwawayHotkey();
    await scriptedTunnel(key, (requestId, tunnel) => {
      // An empty chunk at once, the real answer 150 ms later.
      tunnel.push(chunk(requestId, ""));
      timers.push(
        setTimeout(() => {
          tunnel.push(chunk(requestId, "Hello"));
          tunnel.push({
            kind: { $case: "usage", value: { requestId, promptTokens: 1n, completionTokens: 1n } },
          });
        }, 150),
      );
    });
    await waitForSessions(router.hub, (ss) => ss.some((x) => x.hotkey === key.address));
    const messages = [{ role: "user" as const, content: "hi" }];
    let text = "";
    for await (const c of await client.chat.completions.create({ model: MODEL, messages, stream: true })) {
      text += c.choices[0]?.delta.content ?? "";
    }
    expect(text).to.equal("Hello");
    const r = await client.chat.completions.create({ model: MODEL, messages });
    expect(r.choices[0]?.message.content).to.equal("Hello");
    const s = stats(key.address);
    expect(s?.outcomes.served).to.equal(2);
    expect(s?.ttftEwmaMs).to.be.at.least(140);
  });

  it("retries a failed request on another hotkey, never on another tunnel of the same one", async () => {
    const key = await throwawayHotkey();
    let received = 0;
    const fail = (requestId: number, tunnel: RawTunnelClient) => {
      received++;
      tunnel.push({
        kind: {
          $case: "error",
          value: {
            requestId,
            code: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
            message: "broken",
            httpStatus: 0,
          },
        },
      });
    };
    await scriptedTunnel(key, fail);
    await scriptedTunnel(key, fail);
    await waitForSessions(router.hub, (ss) => ss.filter((x) => x.hotkey === key.address).length === 2);
    const e = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "hi" }] })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(e).to.be.instanceOf(OpenAI.APIError);
    expect((e as InstanceType<typeof OpenAI.APIError>).status).to.equal(502);
    // One attempt: the hotkey's second tunnel is the same miner, and there is no other hotkey.
    expect(received).to.equal(1);
    expect(stats(key.address)?.outcomes.failedBeforeOutput).to.equal(1);
    // No other miner took it, so there was no failover to count.
    expect(await failovers()).to.equal(0);
  });

  it("asks a second miner when one refuses a request as invalid: a refusal another miner overrules counts against the refuser", async () => {
    const liar = await throwawayHotkey();
    let refused = 0;
    await scriptedTunnel(liar, (requestId, tunnel) => {
      refused++;
      tunnel.push({
        kind: {
          $case: "error",
          value: {
            requestId,
            code: RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
            message: "prompt is too long",
            httpStatus: 400,
          },
        },
      });
    });
    const honest = await throwawayHotkey();
    await scriptedTunnel(honest, (requestId, tunnel) => {
      tunnel.push(chunk(requestId, "fine"));
      tunnel.push({ kind: { $case: "usage", value: { requestId, promptTokens: 1n, completionTokens: 1n } } });
    });
    await waitForSessions(router.hub, (ss) => ss.length === 2);
    const messages = [{ role: "user" as const, content: "hi" }];
    // The picker draws at random: ask until the liar has been drawn a few times (it always is).
    let sent = 0;
    while (refused < 2 && sent < 200) {
      const r = await client.chat.completions.create({ model: MODEL, messages });
      expect(r.choices[0]?.message.content, `request ${sent}`).to.equal("fine");
      sent++;
    }
    // Each refusal was overruled: a failure before output for the refuser, in the ledger too.
    expect(refused).to.equal(2);
    expect(stats(liar.address)?.outcomes.failedBeforeOutput).to.equal(refused);
    const usage = await router.usage.waitFor(sent + refused);
    const theirs = usage.filter((e) => e.minerHotkey === liar.address);
    expect(theirs).to.have.length(refused);
    for (const e of theirs)
      expect(e).to.include({ outcome: "failed_early", promptTokens: 0, completionTokens: 0 });
  });

  it("a request every miner refuses reaches the user as the refusal, neutral for each miner", async () => {
    const asked: string[] = [];
    for (let m = 0; m < 2; m++) {
      const key = await throwawayHotkey();
      await scriptedTunnel(key, (requestId, tunnel) => {
        asked.push(key.address);
        tunnel.push({
          kind: {
            $case: "error",
            value: {
              requestId,
              code: RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
              message: "maximum context length is 8192 tokens",
              httpStatus: 400,
            },
          },
        });
      });
    }
    await waitForSessions(router.hub, (ss) => ss.length === 2);
    const e = await client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "hi" }] })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(e).to.be.instanceOf(OpenAI.APIError);
    expect((e as InstanceType<typeof OpenAI.APIError>).status).to.equal(400);
    expect((e as InstanceType<typeof OpenAI.APIError>).message).to.include(
      "maximum context length is 8192 tokens",
    );
    // Both were asked, once each; neither is blamed.
    expect(new Set(asked).size).to.equal(2);
    expect(asked).to.have.length(2);
    for (const k of asked) expect(stats(k)?.outcomes.failedBeforeOutput ?? 0).to.equal(0);
  });

  it("takes a backend that fails every user request out of rotation after a few; users never see it", async () => {
    const good = await startOpenAIBackend({ models: [MODEL] });
    const broken = await startOpenAIBackend({ models: [MODEL], fault: "http500" });
    backends.push(good, broken);
    const g = await startMiner(router, good.url);
    const b = await startMiner(router, broken.url);
    miners.push(g, b);
    for (let i = 0; i < 24; i++) expect(await ask(i)).to.equal(backendTokens(`q${i}`, 8).join(""));
    // Three failures open its breaker (5 s; a slow run may fit one trial), each retried on the good miner.
    expect(broken.chatRequests().length).to.be.within(3, 5);
    expect(stats(b.hotkey)).to.include({ breaker: "open" });
    expect(stats(b.hotkey)?.outcomes.failedBeforeOutput).to.equal(broken.chatRequests().length);
    expect(stats(g.hotkey)?.outcomes.served).to.equal(24);
    // The ledger: 24 served by the good miner; each failure of the broken one counted, with no tokens.
    const usage = await router.usage.waitFor(24 + broken.chatRequests().length);
    expect(usage.filter((e) => e.outcome === "completed").every((e) => e.minerHotkey === g.hotkey)).to.equal(
      true,
    );
    expect(usage.filter((e) => e.outcome === "completed")).to.have.length(24);
    const failures = usage.filter((e) => e.outcome !== "completed");
    expect(failures).to.have.length(broken.chatRequests().length);
    // Each failure moved its request to the good miner: one failover each.
    expect(await failovers()).to.equal(broken.chatRequests().length);
    for (const e of failures) {
      expect(e).to.include({
        minerHotkey: b.hotkey,
        outcome: "failed_early",
        promptTokens: 0,
        completionTokens: 0,
      });
    }
  });
});
