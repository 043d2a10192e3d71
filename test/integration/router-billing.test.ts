import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI, { APIError } from "openai";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { costMicros, MICROS_PER_USD } from "../../router/billing/money.js";
import { ROUTER_DEFAULTS } from "../../router/config.js";
import type { RunningRouter } from "../../router/router.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { billedRouter } from "../support/router-billed-data-dir.js";
import { FakeMiner } from "../support/tunnel-fake-miner.js";

const MODEL = "priced-model";
const LEDGER = { bucketMs: ROUTER_DEFAULTS.bucketS * 1000, retentionMs: ROUTER_DEFAULTS.retentionS * 1000 };

/**
 * The router program as `tensorclaw router` runs it without Redis: billing in
 * `<data-dir>/billing.jsonl`, charges settled through the usage recorder,
 * the store closed (and so everything settled) on shutdown.
 */
describe("router program: billing wired on the embedded store", function () {
  this.timeout(30_000);
  let dir: string;
  let router: RunningRouter | undefined;
  let tunnel: RawTunnelClient | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-router-billing-"));
  });
  afterEach(async () => {
    tunnel?.destroy();
    await router?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("holds, refuses with 402, charges a metered key and keeps its generation in the data dir", async () => {
    const { router: started, paths, paying, broke } = await billedRouter(dir, MODEL);
    router = started;
    const hotkey = await throwawayHotkey();
    tunnel = await RawTunnelClient.open("grpc", { grpc: `127.0.0.1:${started.grpcPort}`, ws: "" });
    const verdict = await tunnel.handshake(hotkey, {
      models: [{ id: MODEL, maxConcurrency: 4, contextLength: 0, kinds: [] }],
    });
    expect(verdict.accept, verdict.reject?.message).to.not.equal(undefined);
    const fake = new FakeMiner(tunnel);
    await waitForSessions(started.hub, (s) => s.some((x) => x.hotkey === hotkey.address), "the miner");

    const baseURL = `http://127.0.0.1:${started.httpPort}/v1`;
    const client = (key: string) => new OpenAI({ apiKey: key, baseURL, maxRetries: 0 });
    const messages = [{ role: "user" as const, content: "Say three letters." }];
    const refused = await client(broke.key)
      .chat.completions.create({ model: MODEL, messages })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(refused).to.be.instanceOf(APIError);
    expect((refused as APIError).status).to.equal(402);
    expect(fake.requests).to.have.length(0);

    const { data, response } = await client(paying.key)
      .chat.completions.create({ model: MODEL, messages, max_tokens: 20 })
      .withResponse();
    const id = response.headers.get("x-request-id") as string;
    const cost = costMicros(data.usage?.prompt_tokens ?? 0, data.usage?.completion_tokens ?? 0, 5, 20);
    expect(cost).to.be.above(0);

    // Shutting down writes every queued event through the ledger into the billing store.
    await started.close();
    router = undefined;
    const billing = await EmbeddedBilling.open({ ...LEDGER, path: paths.billing, nowMs: Date.now() });
    try {
      const account = await billing.account(paying.record.id, Date.now());
      expect(account).to.include({
        spentTotalMicros: cost,
        balanceMicros: MICROS_PER_USD - cost,
        heldMicros: 0,
      });
      const g = await billing.generation(paying.record.id, id, Date.now());
      expect(g).to.include({ id, model: MODEL, costMicros: cost, outcome: "completed" });
      expect((await billing.account(broke.record.id, Date.now())).spentTotalMicros).to.equal(0);
    } finally {
      await billing.close();
    }
  });
});
