import { expect } from "chai";
import type { TensorClawError } from "../../common/errors.js";
import type { Hotkey } from "../../common/identity.js";
import { ProbeRequest } from "../../gen/tensorclaw/v1/probe.js";
import { type MinerFrame, RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { ProbeService } from "../../router/services/probe.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { probeDeps } from "../support/probe-deps.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { type HubHarness, startHub } from "../support/tunnel-hub-harness.js";

function chunk(
  requestId: number,
  over: { text?: string; vector?: number[]; index?: number; finish?: number },
): MinerFrame {
  return {
    kind: {
      $case: "chunk",
      value: {
        requestId,
        contentDelta: over.text ?? "",
        toolCalls: [],
        finishReason: over.finish ?? 0,
        choiceIndex: 0,
        systemFingerprint: "",
        embeddings: over.vector === undefined ? [] : [{ index: over.index ?? 0, values: over.vector }],
        reasoningDelta: "",
        logprobs: [],
      },
    },
  };
}

const usage = (requestId: number, completionTokens: bigint): MinerFrame => ({
  kind: { $case: "usage", value: { requestId, promptTokens: 3n, completionTokens } },
});

/**
 * A model that serves no chat is still probed, with the validator's words
 * sent as the kind it serves, so a miner offering only embeddings (or only
 * completions) is not a ghost for it.
 */
describe("probes of models that serve no chat", function () {
  this.timeout(20_000);
  let h: HubHarness;
  let miner: Hotkey;
  let validator: Hotkey;
  let tunnel: RawTunnelClient | undefined;

  beforeEach(async () => {
    [miner, validator] = await Promise.all([throwawayHotkey(), throwawayHotkey()]);
    h = await startHub();
  });
  afterEach(async () => {
    tunnel?.destroy();
    await h.close();
  });

  async function connect(kinds: RequestKind[]): Promise<RawTunnelClient> {
    tunnel = await RawTunnelClient.open("grpc", h.endpoints);
    await tunnel.handshake(miner, { models: [{ id: "m", maxConcurrency: 2, contextLength: 0, kinds }] });
    await waitForSessions(h.hub, (s) => s.some((x) => x.hotkey === miner.address), "the miner");
    return tunnel;
  }
  const probe = async (
    livenessMs?: number,
    cutAfterTokens = 5,
    kind = RequestKind.REQUEST_KIND_UNSPECIFIED,
  ) =>
    new ProbeService(await probeDeps(h.hub, livenessMs === undefined ? {} : { livenessMs })).probe(
      ProbeRequest.fromPartial({
        kind,
        hotkey: miner.address,
        requestJson: JSON.stringify({
          messages: [
            { role: "system", content: "Be brief." },
            { role: "user", content: "Say hello." },
          ],
          stream: true,
          max_tokens: 7,
        }),
        cutAfterTokens,
      }),
      validator.address,
    );

  it("an embeddings-only model gets the messages as inputs and passes on its vector", async () => {
    const t = await connect([RequestKind.REQUEST_KIND_EMBEDDING]);
    const res = probe();
    const req = await t.expect("request");
    expect(req.chat).to.equal(undefined);
    expect(req.embedding?.input).to.deep.equal(["Be brief.", "Say hello."]);
    // One vector for two inputs: the answer is incomplete, the probe fails.
    t.send(chunk(req.requestId, { vector: [0.6, 0.8] }), usage(req.requestId, 0n));
    expect(await res).to.include({ ok: false, ghost: true });
    const again = probe();
    const req2 = await t.expect("request");
    t.send(
      chunk(req2.requestId, { vector: [0.6, 0.8] }),
      chunk(req2.requestId, { vector: [0, 1], index: 1 }),
      usage(req2.requestId, 0n),
    );
    const passed = await again;
    expect(passed).to.include({ ok: true, ghost: false, model: "m", completionTokens: 0 });
    expect(passed.ttftMs).to.be.greaterThan(0);
    expect(h.hub.sessions().find((s) => s.hotkey === miner.address)?.state).to.equal("active");
  });

  it("an audit of an embeddings-only model returns its vectors in input order; a liveness probe does not", async () => {
    const t = await connect([RequestKind.REQUEST_KIND_EMBEDDING]);
    const answer = async (audit: boolean) => {
      const res = probe(undefined, audit ? 0 : 5);
      const req = await t.expect("request");
      // Sent out of order: the validator gets them by input.
      t.send(
        chunk(req.requestId, { vector: [0, 1], index: 1 }),
        chunk(req.requestId, { vector: [0.6, 0.8], index: 0 }),
        usage(req.requestId, 0n),
      );
      return res;
    };
    const audit = await answer(true);
    expect(audit).to.include({ ok: true, cut: false });
    expect(audit.embeddings.map((e) => e.index)).to.deep.equal([0, 1]);
    expect(audit.embeddings[0]?.values[0]).to.be.closeTo(0.6, 1e-6);
    expect(audit.embeddings[1]?.values).to.deep.equal([0, 1]);
    expect((await answer(false)).embeddings).to.deep.equal([]);
    // A failed audit (one vector for two inputs) carries none either.
    const failed = probe(undefined, 0);
    const req = await t.expect("request");
    t.send(chunk(req.requestId, { vector: [0.6, 0.8] }), usage(req.requestId, 0n));
    expect(await failed).to.deep.include({ ok: false, embeddings: [] });
  });

  it("probes a model offered as several kinds as the kind the validator asks, chat by default", async () => {
    const t = await connect([RequestKind.REQUEST_KIND_CHAT, RequestKind.REQUEST_KIND_EMBEDDING]);
    const asEmbeddings = probe(undefined, 0, RequestKind.REQUEST_KIND_EMBEDDING);
    const req = await t.expect("request");
    expect(req.embedding?.input).to.deep.equal(["Be brief.", "Say hello."]);
    t.send(
      chunk(req.requestId, { vector: [1, 0] }),
      chunk(req.requestId, { vector: [0, 1], index: 1 }),
      usage(req.requestId, 0n),
    );
    const embedded = await asEmbeddings;
    expect(embedded.embeddings.map((e) => e.index)).to.deep.equal([0, 1]);
    expect(embedded.kind, "the kind it went as").to.equal(RequestKind.REQUEST_KIND_EMBEDDING);
    const asDefault = probe();
    const chat = await t.expect("request");
    expect(chat.chat?.messages.map((m) => m.content)).to.deep.equal(["Be brief.", "Say hello."]);
    t.send(chunk(chat.requestId, { text: " one two three four five six" }));
    expect(await asDefault).to.include({ ok: true, cut: true, kind: RequestKind.REQUEST_KIND_CHAT });
    // A kind the model is not offered as, or no kind at all, is refused before anything is sent.
    const refused = async (kind: RequestKind) =>
      probe(undefined, 5, kind).then(
        () => undefined,
        (err: unknown) => err as TensorClawError,
      );
    expect(await refused(RequestKind.REQUEST_KIND_COMPLETION)).to.deep.include({
      code: "not_found",
      message: `no tunnel of ${miner.address} offers a model as completion`,
    });
    expect(await refused(99 as RequestKind)).to.deep.include({ code: "invalid_request" });
    expect(h.hub.sessions().find((s) => s.hotkey === miner.address)?.state).to.equal("active");
  });

  it("an embeddings-only model that sends no vector within the liveness deadline is a ghost", async () => {
    const t = await connect([RequestKind.REQUEST_KIND_EMBEDDING]);
    const res = probe(150);
    await t.expect("request");
    const r = await res;
    expect(r).to.include({ ok: false, ghost: true, error: "no vector within the liveness deadline" });
    expect((await t.expect("cancel")).reason).to.equal("client disconnected");
  });

  it("a completions-only model gets the conversation as one prompt and is judged on its tokens", async () => {
    const t = await connect([RequestKind.REQUEST_KIND_COMPLETION]);
    const res = probe();
    const req = await t.expect("request");
    expect(req.completion?.prompt).to.deep.equal(["Be brief.\n\nSay hello."]);
    expect(req.completion).to.deep.include({ maxTokens: 7, stream: true });
    t.send(chunk(req.requestId, { text: " one two three four five six" }));
    const r = await res;
    expect(r).to.include({ ok: true, cut: true });
  });
});
