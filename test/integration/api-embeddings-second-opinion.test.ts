import { expect } from "chai";
import OpenAI from "openai";
import type { Hotkey } from "../../common/identity.js";
import { type MinerFrame, RequestErrorCode, RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";

const EMBED = "opinion-embed";

/**
 * Embeddings go through the same attempt loop as chat (attempt-loop.ts):
 * a miner whose backend refuses a request as invalid (400) is not taken at
 * its word while another miner can be asked. When the other one serves the
 * request, the user gets the vectors and the refusal counts against the
 * miner that made it, so answering 4xx is no free way to decline work.
 */
describe("api embeddings: a refusal gets a second opinion from another miner", function () {
  this.timeout(30_000);
  let router: RouterUnderTest;
  const tunnels: RawTunnelClient[] = [];

  beforeEach(async () => {
    router = await startRouter({ chat: { requestTimeoutMs: 8000 } });
  });
  afterEach(async () => {
    for (const t of tunnels.splice(0)) t.destroy();
    await router.close();
  });

  /** A raw miner offering EMBED for embeddings that answers each request with `serve`. */
  async function scripted(key: Hotkey, serve: (requestId: number) => MinerFrame[]): Promise<void> {
    const tunnel = await RawTunnelClient.open("grpc", {
      grpc: router.grpcUrl.replace("grpc://", ""),
      ws: "",
    });
    tunnels.push(tunnel);
    const kinds = [RequestKind.REQUEST_KIND_EMBEDDING];
    const verdict = await tunnel.handshake(key, {
      models: [{ id: EMBED, maxConcurrency: 100, contextLength: 0, kinds }],
    });
    expect(verdict.accept).to.not.equal(undefined);
    tunnel.onFrame = (f) => {
      if (f.kind?.$case === "request") tunnel.send(...serve(f.kind.value.requestId));
    };
  }

  it("a 400 one miner answers and another overrules is served (200), and charged to the refuser as a failure", async () => {
    const liar = await throwawayHotkey();
    let refused = 0;
    await scripted(liar, (requestId) => {
      refused++;
      const value = {
        requestId,
        code: RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
        message: "input is not valid",
        httpStatus: 400,
      };
      return [{ kind: { $case: "error", value } }];
    });
    const honest = await throwawayHotkey();
    await scripted(honest, (requestId) => [
      {
        kind: {
          $case: "chunk",
          value: {
            requestId,
            contentDelta: "",
            toolCalls: [],
            finishReason: 0,
            choiceIndex: 0,
            systemFingerprint: "",
            embeddings: [{ index: 0, values: [0.25, 0.5] }],
            reasoningDelta: "",
            logprobs: [],
          },
        },
      },
      { kind: { $case: "usage", value: { requestId, promptTokens: 1n, completionTokens: 0n } } },
    ]);
    await waitForSessions(router.hub, (ss) => ss.length === 2, "both raw miners");
    const client = new OpenAI({ apiKey: "none", baseURL: router.baseURL, maxRetries: 0 });
    // The picker draws at random: ask until the liar has been drawn twice (it always is, soon).
    let sent = 0;
    while (refused < 2 && sent < 200) {
      const r = await client.embeddings.create({ model: EMBED, input: "hi", encoding_format: "float" });
      expect(r.data[0]?.embedding, `request ${sent}`).to.deep.equal([0.25, 0.5]);
      sent++;
    }
    expect(refused).to.equal(2);
    const view = router.routing.view().find((v) => v.hotkey === liar.address && v.model === EMBED);
    expect(view?.outcomes.failedBeforeOutput).to.equal(refused);
    const usage = await router.usage.waitFor(sent + refused);
    const theirs = usage.filter((e) => e.minerHotkey === liar.address);
    expect(theirs).to.have.length(refused);
    for (const e of theirs) {
      expect(e).to.include({ outcome: "failed_early", promptTokens: 0, completionTokens: 0 });
    }
    const served = usage.filter((e) => e.minerHotkey === honest.address);
    expect(served).to.have.length(sent);
    for (const e of served) expect(e).to.include({ outcome: "completed" });
  });

  it("a 400 no other miner overrules reaches the user as the refusal", async () => {
    await scripted(await throwawayHotkey(), (requestId) => {
      const value = {
        requestId,
        code: RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
        message: "input is not valid",
        httpStatus: 400,
      };
      return [{ kind: { $case: "error", value } }];
    });
    await waitForSessions(router.hub, (ss) => ss.length === 1, "the raw miner");
    const client = new OpenAI({ apiKey: "none", baseURL: router.baseURL, maxRetries: 0 });
    const e = await client.embeddings.create({ model: EMBED, input: "hi" }).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(e).to.be.instanceOf(OpenAI.APIError);
    expect((e as InstanceType<typeof OpenAI.APIError>).status).to.equal(400);
    expect((e as InstanceType<typeof OpenAI.APIError>).message).to.include("input is not valid");
  });
});
