import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { silentLogger } from "../../common/logger.js";
import { ModelCatalogue } from "../../router/catalogue/catalogue.js";
import { ROUTER_DEFAULTS } from "../../router/config.js";
import { type RunningRouter, startRouter } from "../../router/router.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";

/**
 * A miner's offer is applied to the catalogue outside any request's error
 * handling: on an open catalogue, an offered id no operator could give
 * (whitespace) once threw there and ended the router process.
 */
describe("open catalogue: a hostile model id in a miner's offer", function () {
  this.timeout(20_000);
  let dir: string;
  let router: RunningRouter | undefined;
  let tunnel: RawTunnelClient | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-hostile-offer-"));
  });
  afterEach(async () => {
    tunnel?.destroy();
    await router?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("is not routable (resolve gives undefined, it does not throw)", () => {
    const open = new ModelCatalogue([], true);
    expect(open.resolve("a b")).to.equal(undefined);
    expect(open.resolve("x".repeat(300))).to.equal(undefined);
    expect(open.resolve("fine-model")?.id).to.equal("fine-model");
  });

  it("is ignored: the miner serves its other model and the router stays up", async () => {
    const started = await startRouter(
      { ...ROUTER_DEFAULTS, httpPort: 0, grpcPort: 0, dataDir: dir, openCatalogue: true },
      silentLogger(),
    );
    router = started;
    const hotkey = await throwawayHotkey();
    tunnel = await RawTunnelClient.open("grpc", { grpc: `127.0.0.1:${started.grpcPort}`, ws: "" });
    const verdict = await tunnel.handshake(hotkey, {
      models: [
        { id: `<img src=x onerror="alert(1)">`, maxConcurrency: 1, contextLength: 0, kinds: [] },
        { id: "fine-model", maxConcurrency: 1, contextLength: 0, kinds: [] },
      ],
    });
    expect(verdict.accept, verdict.reject?.message).to.not.equal(undefined);
    const sessions = await waitForSessions(started.hub, (s) => s.some((x) => x.hotkey === hotkey.address));
    expect(sessions.flatMap((s) => s.models.map((m) => m.id))).to.deep.equal(["fine-model"]);
    const res = await fetch(`http://127.0.0.1:${started.httpPort}/healthz`);
    expect(res.status).to.equal(200);
  });
});
