import { expect } from "chai";
import type { Embedding } from "../../gen/tensorclaw/v1/chat.js";
import { type InferenceRequest, type MinerFrame, RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { PER_MESSAGE_ALLOWANCE, PER_REQUEST_ALLOWANCE } from "../../router/usage/clamp.js";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";

const EMBED = "hostile-embed";

function chunk(requestId: number, over: { embeddings?: Embedding[]; contentDelta?: string }): MinerFrame {
  return {
    kind: {
      $case: "chunk",
      value: {
        requestId,
        contentDelta: over.contentDelta ?? "",
        toolCalls: [],
        finishReason: 0,
        choiceIndex: 0,
        systemFingerprint: "",
        embeddings: over.embeddings ?? [],
        reasoningDelta: "",
        logprobs: [],
      },
    },
  };
}

function usage(requestId: number, promptTokens: bigint, completionTokens = 0n): MinerFrame {
  return { kind: { $case: "usage", value: { requestId, promptTokens, completionTokens } } };
}

/**
 * A miner is a hostile claimant: an embeddings answer with a missing,
 * duplicate, non-finite or wrongly sized vector, or with text in it, fails
 * the request (the user sees an error, the miner earns nothing and the
 * failure counts against it); an inflated token count is clamped to the
 * router's own count of the inputs, and completion tokens are never credited.
 */
describe("api embeddings: a hostile miner's answers are checked, its counts bounded", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  let tunnel: RawTunnelClient | undefined;
  let hotkey: string;

  before(async () => {
    router = await startRouter({ chat: { requestTimeoutMs: 5000 } });
  });
  after(async () => {
    await router?.close();
  });
  beforeEach(async () => {
    // A fresh hotkey per case: an earlier case's failures must not open this one's breaker.
    const key = await throwawayHotkey();
    hotkey = key.address;
    tunnel = await RawTunnelClient.open("grpc", { grpc: router.grpcUrl.replace("grpc://", ""), ws: "" });
    await tunnel.handshake(key, {
      models: [
        { id: EMBED, maxConcurrency: 4, contextLength: 0, kinds: [RequestKind.REQUEST_KIND_EMBEDDING] },
      ],
    });
    await waitForSessions(router.hub, (s) => s.some((x) => x.hotkey === hotkey), "the raw miner");
  });
  afterEach(() => {
    tunnel?.destroy();
  });

  /** Posts an embeddings request, answers it with `answer` from the raw miner, returns the user's response. */
  async function exchange(body: Record<string, unknown>, answer: (req: InferenceRequest) => MinerFrame[]) {
    const asked = fetch(`${router.baseURL}/embeddings`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: EMBED, ...body }),
    });
    const req = await (tunnel as RawTunnelClient).expect("request");
    expect(req.chat).to.equal(undefined);
    tunnel?.send(...answer(req));
    const res = await asked;
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, req };
  }

  const failures: [string, Record<string, unknown>, (id: number) => MinerFrame[]][] = [
    [
      "a missing vector",
      { input: ["a", "b"] },
      (id) => [chunk(id, { embeddings: [{ index: 0, values: [1] }] }), usage(id, 2n)],
    ],
    [
      "a duplicate index",
      { input: ["a", "b"] },
      (id) => [
        chunk(id, {
          embeddings: [
            { index: 0, values: [1] },
            { index: 0, values: [1] },
          ],
        }),
        usage(id, 2n),
      ],
    ],
    [
      "an index out of range",
      { input: ["a"] },
      (id) => [chunk(id, { embeddings: [{ index: 1, values: [1] }] }), usage(id, 1n)],
    ],
    [
      "a NaN",
      { input: ["a"] },
      (id) => [chunk(id, { embeddings: [{ index: 0, values: [0.5, Number.NaN] }] }), usage(id, 1n)],
    ],
    [
      "the wrong dimensions",
      { input: ["a"], dimensions: 4 },
      (id) => [chunk(id, { embeddings: [{ index: 0, values: [1, 2, 3] }] }), usage(id, 1n)],
    ],
    [
      "text in an embeddings answer",
      { input: ["a"] },
      (id) => [chunk(id, { contentDelta: "hi", embeddings: [{ index: 0, values: [1] }] }), usage(id, 1n)],
    ],
  ];
  for (const [what, body, answer] of failures) {
    it(`${what} fails the request and earns nothing`, async () => {
      const before = router.usage.events.length;
      const { status, body: error, req } = await exchange(body, (r) => answer(r.requestId));
      expect(req.embedding?.input).to.deep.equal(body.input);
      expect(status).to.equal(502);
      expect((error.error as { type: string }).type).to.be.a("string");
      const events = await router.usage.waitFor(before + 1);
      expect(events.at(-1)).to.include({ minerHotkey: hotkey, promptTokens: 0, completionTokens: 0 });
      expect(events.at(-1)?.outcome).to.not.equal("completed");
    });
  }

  it("an inflated prompt count is clamped to the router's count of the inputs; completion tokens are never credited", async () => {
    const before = router.usage.events.length;
    const input = ["hello world", "two inputs"];
    const { status, body } = await exchange({ input }, (r) => [
      chunk(r.requestId, { embeddings: [{ index: 1, values: [0, 1] }] }),
      chunk(r.requestId, { embeddings: [{ index: 0, values: [1, 0] }] }),
      usage(r.requestId, 1_000_000n, 500n),
    ]);
    expect(status).to.equal(200);
    expect((body.data as { embedding: number[] }[]).map((d) => d.embedding)).to.deep.equal([
      [1, 0],
      [0, 1],
    ]);
    // o200k_base (the default tokenizer): "hello world" and "two inputs" are 2 tokens each.
    const most = 4 + PER_MESSAGE_ALLOWANCE * input.length + PER_REQUEST_ALLOWANCE;
    expect(body.usage).to.deep.equal({ prompt_tokens: most, total_tokens: most });
    const events = await router.usage.waitFor(before + 1);
    expect(events.at(-1)).to.include({
      minerHotkey: hotkey,
      promptTokens: most,
      completionTokens: 0,
      outcome: "completed",
    });
  });
});
