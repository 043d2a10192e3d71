import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { expect } from "chai";
import { silentLogger } from "../../common/logger.js";
import { ROUTER_DEFAULTS, type RouterConfig } from "../../router/config.js";
import { type RunningRouter, startRouter } from "../../router/router.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { pollUntil } from "../support/poll.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { FakeMiner } from "../support/tunnel-fake-miner.js";

const MODEL = "ready-model";
/** The buf CLI from @bufbuild/buf (a dev dependency). */
const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

/**
 * `/readyz` of the router program: ready only with a live miner (unless
 * `--ready-without-miners`), and not ready from the moment a shutdown starts
 * while its requests finish.
 */
describe("router program: readiness", function () {
  this.timeout(30_000);
  let dir: string;
  let router: RunningRouter | undefined;
  let tunnel: RawTunnelClient | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-router-ready-"));
  });
  afterEach(async () => {
    tunnel?.destroy();
    await router?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function start(over: Partial<RouterConfig> = {}): Promise<RunningRouter> {
    router = await startRouter(
      {
        ...ROUTER_DEFAULTS,
        httpPort: 0,
        grpcPort: 0,
        dataDir: dir,
        openCatalogue: true,
        noAuth: true,
        ...over,
      },
      silentLogger(),
    );
    return router;
  }
  const readyz = async (r: RunningRouter) => {
    const res = await fetch(`http://127.0.0.1:${r.httpPort}/readyz`);
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  async function connectMiner(
    r: RunningRouter,
    fake?: (t: RawTunnelClient) => FakeMiner,
  ): Promise<FakeMiner> {
    const hotkey = await throwawayHotkey();
    tunnel = await RawTunnelClient.open("grpc", { grpc: `127.0.0.1:${r.grpcPort}`, ws: "" });
    await tunnel.handshake(hotkey, {
      models: [{ id: MODEL, maxConcurrency: 4, contextLength: 0, kinds: [] }],
    });
    const miner = fake === undefined ? new FakeMiner(tunnel) : fake(tunnel);
    await waitForSessions(r.hub, (s) => s.some((x) => x.hotkey === hotkey.address), "the miner");
    return miner;
  }

  it("is not ready with no live miner, and ready once one is connected", async () => {
    const r = await start();
    const none = await readyz(r);
    expect(none.status).to.equal(503);
    expect(none.body).to.include({ status: "not ready", live_miners: 0, draining: 0 });
    await connectMiner(r);
    const one = await readyz(r);
    expect(one.status).to.equal(200);
    expect(one.body).to.include({ status: "ready", live_miners: 1 });
    // The miner leaves: not ready again.
    tunnel?.destroy();
    await pollUntil(async () => ((await readyz(r)).status === 503 ? true : undefined), {
      what: "not ready after the miner left",
      timeoutMs: 5000,
      intervalMs: 50,
    });
  });

  it("with --ready-without-miners is ready before any miner arrives", async () => {
    const r = await start({ readyWithoutMiners: true });
    const none = await readyz(r);
    expect(none.status).to.equal(200);
    expect(none.body).to.include({ live_miners: 0 });
  });

  it("is not ready from the start of a shutdown while a request still runs", async () => {
    const r = await start({ drainGraceMs: 5000 });
    // The miner holds every request until the test lets it end.
    const miner = await connectMiner(
      r,
      (t) => new FakeMiner(t, { plan: () => ({ chunks: ["a"], end: "hang" }) }),
    );
    expect((await readyz(r)).status).to.equal(200);
    const asked = fetch(`http://127.0.0.1:${r.httpPort}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: MODEL, messages: [{ role: "user", content: "hi" }], stream: true }),
    });
    await miner.until(() => miner.requests.length === 1);
    const closing = r.close();
    router = undefined;
    const during = await readyz(r);
    expect(during.status).to.equal(503);
    expect(during.body).to.include({ draining: 1 });
    tunnel?.destroy();
    await closing;
    await asked.then(
      (res) => res.text(),
      () => undefined,
    );
  });
});

describe("router program: buf curl through reflection", function () {
  this.timeout(60_000);
  let dir: string;
  let router: RunningRouter | undefined;
  after(async () => {
    await router?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("reaches health (and so every service whose file holds a map) with buf curl, which reads reflection as protoc writes it", async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-router-bufcurl-"));
    router = await startRouter(
      { ...ROUTER_DEFAULTS, httpPort: 0, grpcPort: 0, dataDir: dir },
      silentLogger(),
    );
    const curl = (method: string) =>
      promisify(execFile)(BUF, [
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        `http://127.0.0.1:${router?.grpcPort}/${method}`,
      ]);
    const health = await curl("grpc.health.v1.Health/Check");
    expect(JSON.parse(health.stdout)).to.deep.equal({ status: "SERVING" });
    // The router's own services resolve too (an unsigned call is refused by the service, not by buf).
    const unsigned = await curl("tensorclaw.v1.MinerDirectoryService/ListMiners").then(
      () => "accepted",
      (err: { stderr?: string }) => err.stderr ?? "",
    );
    expect(unsigned).to.not.match(/failed to find service/);
    expect(unsigned).to.match(/unauthenticated|permission/i);
  });
});
