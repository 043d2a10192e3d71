import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, ServerCredentials } from "@grpc/grpc-js";
import { expect } from "chai";
import { systemClock } from "../../common/clock.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { ValidatorAuth } from "../../common/validator-call/server.js";
import { MinerDirectoryServiceService } from "../../gen/tensorclaw/v1/directory.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { UsageReportServiceService } from "../../gen/tensorclaw/v1/usage.js";
import { AllowListAdmission } from "../../router/admission.js";
import { EmbeddedLedger } from "../../router/ledger/embedded.js";
import { DEFAULT_LEDGER_OPTIONS } from "../../router/ledger/ledger.js";
import { directoryService } from "../../router/services/directory.js";
import { addProbeService } from "../../router/services/probe.js";
import { usageService } from "../../router/services/usage.js";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { RouterClient } from "../../validator/router-client.js";
import { FileStateStore } from "../../validator/state-store-file.js";
import { Validator } from "../../validator/validator.js";
import { throwawayHotkey } from "../support/keys.js";
import { probeDeps } from "../support/probe-deps.js";
import { connectMiner, type HubHarness, startHub } from "../support/tunnel-hub-harness.js";

/**
 * The validator against the router's real parts: tunnel hub with miners on
 * real tunnels, the Directory / UsageReport / Probe services behind
 * ValidatorAuth on one gRPC server, and the embedded usage ledger.
 */
describe("validator end to end (real router services, real tunnels)", () => {
  let validatorKey: Hotkey;
  let strangerKey: Hotkey;
  let goodMiner: Hotkey;
  let badMiner: Hotkey;
  let hub: HubHarness;
  let ledger: EmbeddedLedger;
  let server: Server;
  let url: string;
  let dir: string;
  const clients: RouterClient[] = [];

  before(async () => {
    [validatorKey, strangerKey, goodMiner, badMiner] = await Promise.all([
      throwawayHotkey(),
      throwawayHotkey(),
      throwawayHotkey(),
      throwawayHotkey(),
    ]);
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-ve2e-"));
    hub = await startHub();
    await connectMiner(hub, "grpc", goodMiner);
    await connectMiner(hub, "ws", badMiner, undefined, {
      plan: () => ({
        chunks: [],
        end: { error: RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR, message: "down" },
      }),
    });
    ledger = await EmbeddedLedger.open({ ...DEFAULT_LEDGER_OPTIONS, nowMs: Date.now() });
    const now = Date.now();
    await ledger.setTier("m1", 2, now);
    await ledger.record(
      [
        {
          requestId: "user-1",
          minerHotkey: goodMiner.address,
          model: "m1",
          promptTokens: 30_000,
          completionTokens: 20_000,
          outcome: "completed",
          startedAtMs: now - 1000,
          finishedAtMs: now,
          // A paid request: only paid tokens earn.
          paid: true,
        },
      ],
      now,
    );
    const admission = new AllowListAdmission([], [validatorKey.address]);
    const auth = new ValidatorAuth({
      routerId: hub.hub.routerId,
      authorize: (hk) => admission.authorizeValidator(hk),
    });
    server = new Server();
    const add = (def: Parameters<ValidatorAuth["wrap"]>[0], impl: Parameters<ValidatorAuth["wrap"]>[1]) => {
      const w = auth.wrap(def, impl);
      server.addService(w.definition, w.implementation);
    };
    add(MinerDirectoryServiceService, directoryService({ sessions: () => hub.hub.sessions() }));
    add(UsageReportServiceService, usageService({ ledger }));
    addProbeService(server, auth, await probeDeps(hub.hub));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    // This server has no tunnel service to learn the router id from: the URL names it.
    url = `grpc://127.0.0.1:${port}?id=${hub.hub.routerId}`;
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    server.forceShutdown();
    await hub.close();
    await ledger.close();
    await rm(dir, { recursive: true, force: true });
  });

  const validator = async (key: Hotkey, printed: string[] = []) => {
    const client = new RouterClient([url], { signer: key, logger: silentLogger(), callTimeoutMs: 3000 });
    clients.push(client);
    return new Validator({
      router: client,
      store: await FileStateStore.open(join(dir, `${key.address}.json`)),
      chain: undefined,
      selfHotkey: key.address,
      settings: {
        netuid: 92,
        dryRun: true,
        probeConcurrency: 16,
        probeTimeoutMs: 2000,
        probeIntervalMs: 60_000,
        weightsIntervalMs: 60_000,
        latencyTiers: DEFAULT_LATENCY_TIERS,
      },
      clock: systemClock,
      randomBytes: (n) => randomBytes(n),
      logger: silentLogger(),
      print: (t) => printed.push(t),
    });
  };

  it("probes through the tunnels, reads the ledger, scores, and ghosts the failing miner", async () => {
    const printed: string[] = [];
    const v = await validator(validatorKey, printed);
    const round = await v.probeRound();
    expect(round?.entries.map((e) => [e.hotkey, e.record.ok]).sort()).to.deep.equal(
      [
        [goodMiner.address, true],
        [badMiner.address, false],
      ].sort(),
    );
    // The router took the failing miner out of the pool.
    const states = new Map(hub.hub.sessions().map((s) => [s.hotkey, s.state]));
    expect(states.get(badMiner.address)).to.equal("ghost");
    expect(states.get(goodMiner.address)).to.equal("active");

    const r = await v.scorePass({ submit: true, print: true });
    const by = new Map(r?.scores.map((s) => [s.hotkey, s]));
    expect(by.get(goodMiner.address)?.tokens).to.equal(50_000);
    expect(by.get(goodMiner.address)?.businessPoints).to.be.closeTo(10, 1e-9);
    expect(by.get(goodMiner.address)?.business).to.equal(100);
    expect(by.get(badMiner.address)).to.include({ ghost: true, base: 0, final: 0 });
    expect(printed.join("")).to.contain(goodMiner.address);

    // Probe tokens never reach the ledger: only the user request is counted.
    const report = await ledger.usage({ nowMs: Date.now(), windowMs: 86_400_000 });
    expect(report.miners.map((m) => [m.hotkey, m.requests])).to.deep.equal([[goodMiner.address, 1]]);
  });

  it("is refused as a stranger and then skips the round instead of punishing miners", async () => {
    const v = await validator(strangerKey);
    expect(await v.probeRound()).to.equal(undefined);
    expect(await v.scorePass({ submit: true, print: false })).to.equal(undefined);
    expect(hub.hub.sessions().every((s) => s.state === "active")).to.equal(true);
  });
});
