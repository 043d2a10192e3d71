import { expect } from "chai";
import { type InferenceRequest, type MinerFrame, RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { FINISH_TOKEN_ALLOWANCE } from "../../router/usage/clamp.js";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";

const MODEL = "hostile-text";

function chunk(requestId: number, choiceIndex: number, text: string, finishReason = 0): MinerFrame {
  return {
    kind: {
      $case: "chunk",
      value: {
        requestId,
        contentDelta: text,
        toolCalls: [],
        finishReason,
        choiceIndex,
        systemFingerprint: "",
        embeddings: [],
        reasoningDelta: "",
        logprobs: [],
      },
    },
  };
}

/**
 * A hostile miner answering completions: a choice nobody asked for fails the
 * request, vectors in a text answer fail it, and an inflated completion
 * count is credited no more than the text relayed (and never past the
 * per-choice ceiling).
 */
describe("api completions: a hostile miner's choices and counts are bounded", function () {
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
    const key = await throwawayHotkey();
    hotkey = key.address;
    tunnel = await RawTunnelClient.open("grpc", { grpc: router.grpcUrl.replace("grpc://", ""), ws: "" });
    await tunnel.handshake(key, {
      models: [
        {
          id: MODEL,
          maxConcurrency: 4,
          contextLength: 0,
          kinds: [RequestKind.REQUEST_KIND_CHAT, RequestKind.REQUEST_KIND_COMPLETION],
        },
      ],
    });
    await waitForSessions(router.hub, (s) => s.some((x) => x.hotkey === hotkey), "the raw miner");
  });
  afterEach(() => {
    tunnel?.destroy();
  });

  async function exchange(body: Record<string, unknown>, answer: (req: InferenceRequest) => MinerFrame[]) {
    const asked = fetch(`${router.baseURL}/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, ...body }),
    });
    const req = await (tunnel as RawTunnelClient).expect("request");
    tunnel?.send(...answer(req));
    const res = await asked;
    return { status: res.status, body: (await res.json()) as Record<string, unknown>, req };
  }

  it("a chunk for a choice that was not asked for fails the request and earns nothing", async () => {
    const before = router.usage.events.length;
    const { status, req } = await exchange({ prompt: ["a", "b"], n: 2 }, (r) => [
      chunk(r.requestId, 3, "fine"),
      chunk(r.requestId, 4, "no such choice"),
      { kind: { $case: "usage", value: { requestId: r.requestId, promptTokens: 2n, completionTokens: 2n } } },
    ]);
    expect(req.completion?.prompt).to.deep.equal(["a", "b"]);
    expect(req.completion?.n).to.equal(2);
    expect(status).to.equal(502);
    const events = await router.usage.waitFor(before + 1);
    expect(events.at(-1)).to.include({ minerHotkey: hotkey, promptTokens: 0, completionTokens: 0 });
  });

  it("an inflated completion count is bounded by the text relayed", async () => {
    const before = router.usage.events.length;
    const { status, body } = await exchange({ prompt: "hello", max_tokens: 50 }, (r) => [
      chunk(r.requestId, 0, "two words", 1),
      {
        kind: {
          $case: "usage",
          value: { requestId: r.requestId, promptTokens: 1n, completionTokens: 1000n },
        },
      },
    ]);
    expect(status).to.equal(200);
    // o200k_base: "two words" is 2 tokens, plus one end-of-text token for the one choice.
    const most = 2 + FINISH_TOKEN_ALLOWANCE;
    expect(body.usage).to.deep.equal({ prompt_tokens: 1, completion_tokens: most, total_tokens: 1 + most });
    const events = await router.usage.waitFor(before + 1);
    expect(events.at(-1)).to.include({ minerHotkey: hotkey, completionTokens: most, outcome: "completed" });
  });
});
