import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI, { APIError } from "openai";
import { RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { costMicros, MICROS_PER_USD } from "../../router/billing/money.js";
import { ROUTER_DEFAULTS } from "../../router/config.js";
import type { RunningRouter } from "../../router/router.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { billedRouter } from "../support/router-billed-data-dir.js";

const MODEL = "priced-embed";
const LEDGER = { bucketMs: ROUTER_DEFAULTS.bucketS * 1000, retentionMs: ROUTER_DEFAULTS.retentionS * 1000 };

/** Embeddings are billed like a chat prompt: a metered key holds, is refused (402) or charged prompt tokens only. */
describe("router program: embeddings billed on the embedded store", function () {
  this.timeout(30_000);
  let dir: string;
  let router: RunningRouter | undefined;
  let tunnel: RawTunnelClient | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-router-billing-embed-"));
  });
  afterEach(async () => {
    tunnel?.destroy();
    await router?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("refuses a broke key with 402 and charges a paying key its prompt tokens at the prompt price", async () => {
    const { router: started, paths, paying, broke } = await billedRouter(dir, MODEL);
    router = started;
    const hotkey = await throwawayHotkey();
    tunnel = await RawTunnelClient.open("grpc", { grpc: `127.0.0.1:${started.grpcPort}`, ws: "" });
    await tunnel.handshake(hotkey, {
      models: [
        { id: MODEL, maxConcurrency: 4, contextLength: 0, kinds: [RequestKind.REQUEST_KIND_EMBEDDING] },
      ],
    });
    await waitForSessions(started.hub, (s) => s.some((x) => x.hotkey === hotkey.address), "the miner");
    let requests = 0;
    tunnel.onFrame = (f) => {
      if (f.kind?.$case !== "request") return;
      requests++;
      const id = f.kind.value.requestId;
      const vectors = (f.kind.value.embedding?.input ?? []).map((_, index) => ({ index, values: [1, 0] }));
      tunnel?.send(
        {
          kind: {
            $case: "chunk",
            value: {
              requestId: id,
              contentDelta: "",
              toolCalls: [],
              finishReason: 0,
              choiceIndex: 0,
              systemFingerprint: "",
              embeddings: vectors,
              reasoningDelta: "",
              logprobs: [],
            },
          },
        },
        // An inflated completion count: embeddings are never charged for completion tokens.
        { kind: { $case: "usage", value: { requestId: id, promptTokens: 6n, completionTokens: 50n } } },
      );
    };

    const baseURL = `http://127.0.0.1:${started.httpPort}/v1`;
    const client = (key: string) => new OpenAI({ apiKey: key, baseURL, maxRetries: 0 });
    const input = ["three small words", "and three more"];
    const refused = await client(broke.key)
      .embeddings.create({ model: MODEL, input })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(refused).to.be.instanceOf(APIError);
    expect((refused as APIError).status).to.equal(402);
    expect(requests).to.equal(0);

    const { data, response } = await client(paying.key)
      .embeddings.create({ model: MODEL, input })
      .withResponse();
    expect(data.usage).to.deep.equal({ prompt_tokens: 6, total_tokens: 6 });
    const id = response.headers.get("x-request-id") as string;
    const cost = costMicros(6, 0, 5, 20);
    expect(cost).to.be.above(0);
    await started.close();
    router = undefined;
    const billing = await EmbeddedBilling.open({ ...LEDGER, path: paths.billing, nowMs: Date.now() });
    try {
      expect(await billing.account(paying.record.id, Date.now())).to.include({
        spentTotalMicros: cost,
        balanceMicros: MICROS_PER_USD - cost,
        heldMicros: 0,
      });
      const g = await billing.generation(paying.record.id, id, Date.now());
      expect(g).to.include({ id, model: MODEL, costMicros: cost, outcome: "completed" });
    } finally {
      await billing.close();
    }
  });
});
