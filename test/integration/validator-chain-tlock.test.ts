import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ApiPromise } from "@polkadot/api";
import type { Extrinsic } from "@polkadot/types/interfaces";
import { u8aToHex } from "@polkadot/util";
import { decodeAddress } from "@polkadot/util-crypto";
import { expect } from "chai";
import { connectPolkadotChain, type PolkadotChain } from "../../common/chain/polkadot.js";
import { systemClock } from "../../common/clock.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { RouterClient } from "../../validator/router-client.js";
import { FileStateStore } from "../../validator/state-store-file.js";
import { QUICKNET } from "../../validator/tlock-quicknet.js";
import { Validator } from "../../validator/validator.js";
import { throwawayHotkey } from "../support/keys.js";
import { memoryLogger } from "../support/memory-logger.js";
import { tlockDecrypt } from "../support/tlock-decrypt.js";
import {
  moduleErrorEvents,
  requireSubtensorMetadata,
  SubtensorTestProvider,
  successEvents,
  type TestSubnet,
  writeSubnet,
} from "../support/validator-chain-provider.js";
import { okProbe, type RouterStandIn, session, startRouterStandIn } from "../support/validator-router.js";

const NETUID = 92;
const BLOCK = 10_000;
const SIG_1000 = Buffer.from(
  (
    JSON.parse(
      readFileSync(new URL("../fixtures/tlock/quicknet-round-1000.json", import.meta.url), "utf8"),
    ) as { signature: string }
  ).signature,
  "hex",
);

describe("validator chain: timelocked commit-reveal (real Subtensor metadata, no network)", () => {
  let metadataPath: string;
  let validatorKey: Hotkey;
  let minerA: Hotkey;
  let minerB: Hotkey;
  let provider: SubtensorTestProvider;
  let chain: PolkadotChain;
  let api: ApiPromise;
  let dir: string;
  let router: RouterStandIn;
  let client: RouterClient;

  before(async function () {
    metadataPath = requireSubtensorMetadata(this);
    validatorKey = await throwawayHotkey();
    minerA = await throwawayHotkey();
    minerB = await throwawayHotkey();
  });

  beforeEach(async () => {
    provider = SubtensorTestProvider.fromFixture(metadataPath, BLOCK);
    chain = await connectPolkadotChain({
      provider,
      signer: validatorKey,
      logger: silentLogger(),
      inclusionTimeoutMs: 5000,
    });
    api = chain.api;
    provider.eventsFor = () => successEvents(api);
    dir = await mkdtemp(join(tmpdir(), "tc-validator-tlock-"));
    router = await startRouterStandIn({
      sessions: [session(minerA.address), session(minerB.address)],
      probe: () => okProbe(50),
    });
    client = new RouterClient([router.url], { signer: validatorKey, logger: silentLogger() });
  });

  afterEach(async () => {
    client?.close();
    await router?.close();
    await chain?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const subnet = (over: Partial<TestSubnet> = {}): TestSubnet => ({
    netuid: NETUID,
    neurons: [
      { hotkey: minerA.address, permit: false, lastUpdate: 0 },
      { hotkey: validatorKey.address, permit: true, lastUpdate: 9_000 },
      { hotkey: minerB.address, permit: false, lastUpdate: 0 },
    ],
    commitReveal: true,
    rateLimit: 100,
    versionKey: 7n,
    tempo: 360,
    revealPeriodEpochs: 1,
    ...over,
  });

  const decode = (i: number): Extrinsic => {
    const s = provider.submitted[i];
    if (s === undefined) throw new Error(`no extrinsic #${i} was submitted`);
    return api.createType("Extrinsic", s.hex);
  };

  /**
   * A wall clock at which a commit made at block 10_000 is locked to
   * quicknet round 1000, whose real signature the fixture holds, so the test
   * can open what the validator submitted exactly as the chain will. Worked
   * out from the SDK's rule by hand: block 10_000 is in epoch 27, epoch 28
   * starts at block 10_015, the target is 3 blocks later (18 blocks away).
   */
  const clockForRound1000 = (blockTimeMs: number) => ({
    ...systemClock,
    now: () => QUICKNET.genesisTimeSec * 1000 + 1000 * 3000 + 1500 - 18 * blockTimeMs,
  });

  const validator = async (
    opts: { dryRun?: boolean; now?: () => number; print?: (t: string) => void } = {},
  ) => {
    const log = memoryLogger();
    const blockTimeMs = (await chain.readMetagraph(NETUID)).blockTimeMs ?? 12_000;
    const v = new Validator({
      router: client,
      store: await FileStateStore.open(join(dir, "state.json")),
      chain,
      selfHotkey: validatorKey.address,
      settings: {
        netuid: NETUID,
        dryRun: opts.dryRun ?? false,
        probeConcurrency: 8,
        probeTimeoutMs: 2000,
        probeIntervalMs: 60_000,
        weightsIntervalMs: 60_000,
        latencyTiers: DEFAULT_LATENCY_TIERS,
      },
      clock: opts.now === undefined ? clockForRound1000(blockTimeMs) : { ...systemClock, now: opts.now },
      randomBytes: (n) => randomBytes(n),
      logger: log.logger,
      print: opts.print ?? (() => {}),
    });
    await v.probeRound();
    return { v, log };
  };

  it("reads the runtime's required commit-reveal version and its block time", async () => {
    writeSubnet(api, provider, subnet());
    const mg = await chain.readMetagraph(NETUID);
    // The runtime's default (the fixture's storage fallback) until governance changes it.
    expect(mg.commitRevealVersion).to.equal(4);
    const slot = Number(api.consts.aura?.slotDuration?.toString());
    expect(slot).to.be.greaterThan(0);
    expect(mg.blockTimeMs).to.equal(slot);
    const key = api.query.subtensorModule?.commitRevealWeightsVersion?.key();
    if (key === undefined) throw new Error("runtime has no CommitRevealWeightsVersion");
    provider.setStorage(key, u8aToHex(api.createType("u16", 5).toU8a()));
    expect((await chain.readMetagraph(NETUID)).commitRevealVersion).to.equal(5);
  });

  it("commits the weights timelocked to the reveal round; the real pulse opens them to the runtime's payload", async () => {
    writeSubnet(api, provider, subnet());
    const { v, log } = await validator();
    const r = await v.scorePass({ submit: true, print: false });
    expect(r?.actions).to.deep.equal([{ kind: "timelock", uid: 1, version: 4 }]);
    expect(r?.outcomes[0]?.ok).to.equal(true);
    expect(provider.submitted).to.have.length(1);
    const ext = decode(0);
    expect(`${ext.method.section}.${ext.method.method}`).to.equal("subtensorModule.commitTimelockedWeights");
    expect(ext.signer.toString()).to.equal(validatorKey.address);
    const [netuid, commit, revealRound, version] = ext.method.args;
    expect(netuid?.toJSON()).to.equal(NETUID);
    expect(revealRound?.toString()).to.equal("1000");
    expect(version?.toJSON()).to.equal(4);

    // What the chain will do at round 1000: open the commit and decode WeightsTlockPayload.
    const plain = tlockDecrypt(commit?.toU8a(true) ?? new Uint8Array(), SIG_1000);
    const [hotkey, uids, values, versionKey] = api
      .createType("(Vec<u8>, Vec<u16>, Vec<u16>, u64)", plain)
      .toJSON() as [string, number[], number[], number];
    expect(hotkey).to.equal(`0x${Buffer.from(decodeAddress(validatorKey.address)).toString("hex")}`);
    // Both miners answer their probes and neither has traffic: equal scores.
    expect(uids).to.deep.equal([0, 2]);
    expect(values).to.deep.equal([65_535, 65_535]);
    expect(versionKey).to.equal(7);
    // Nothing is left to reveal by hand: the chain does it.
    expect(await (await FileStateStore.open(join(dir, "state.json"))).pendingCommits()).to.deep.equal([]);
    const path = log.lines().find((l) => l.msg === "weights path") as { path?: string } | undefined;
    expect(path?.path).to.match(/^commit_timelocked_weights: .*commit_reveal_version 4/);
  });

  it("commits once per epoch: the chain's LastUpdate in this epoch means wait", async () => {
    // The chain moves LastUpdate to the commit block; this stand-in is told so by hand.
    writeSubnet(api, provider, subnet({ rateLimit: 0 }));
    const { v } = await validator();
    await v.scorePass({ submit: true, print: false });
    const committedAt = provider.submitted[0]?.blockNumber ?? -1;
    writeSubnet(
      api,
      provider,
      subnet({
        rateLimit: 0,
        neurons: subnet().neurons.map((n, i) => (i === 1 ? { ...n, lastUpdate: committedAt } : n)),
      }),
    );
    const again = await v.scorePass({ submit: true, print: false });
    expect(again?.actions[0]?.kind === "wait" && again.actions[0].reason).to.match(
      /already made in epoch 27/,
    );
    expect(provider.submitted).to.have.length(1);
  });

  it("reports the chain's refusal by name (IncorrectCommitRevealVersion)", async () => {
    writeSubnet(api, provider, subnet());
    provider.eventsFor = () => moduleErrorEvents(api, "IncorrectCommitRevealVersion");
    const { v, log } = await validator();
    const r = await v.scorePass({ submit: true, print: false });
    expect(r?.outcomes[0]).to.include({ ok: false, error: "SubtensorModule.IncorrectCommitRevealVersion" });
    expect(log.lines().some((l) => l.msg === "timelocked commit failed")).to.equal(true);
    const direct = await chain.commitTimelockedWeights(NETUID, new Uint8Array([1, 2, 3]), 1000n, 3);
    expect(direct).to.include({ ok: false, error: "SubtensorModule.IncorrectCommitRevealVersion" });
  });

  it("a dry run prints the ciphertext size and the reveal round, and submits nothing", async () => {
    writeSubnet(api, provider, subnet());
    let out = "";
    const { v } = await validator({ dryRun: true, print: (t) => (out += t) });
    const r = await v.scorePass({ submit: true, print: true });
    expect(r?.actions.map((a) => a.kind)).to.deep.equal(["timelock"]);
    expect(provider.submitted).to.have.length(0);
    // Payload: 33 (hotkey) + 5 + 5 (two u16 vectors of 2) + 8 = 51 bytes; ciphertext = 244 + 51.
    expect(out).to.match(
      /dry run, would commit_timelocked_weights\(netuid 92, 295-byte ciphertext of uids \[0,2\] values \[65535,65535\], reveal_round 1000, commit_reveal_version 4\) as uid 1; the chain opens it in the epoch from block 10015/,
    );
  });

  it("with commit-reveal off, sets weights directly as before", async () => {
    writeSubnet(api, provider, subnet({ commitReveal: false }));
    const { v, log } = await validator();
    const r = await v.scorePass({ submit: true, print: false });
    expect(r?.actions.map((a) => a.kind)).to.deep.equal(["set"]);
    expect(decode(0).method.method).to.equal("setWeights");
    const path = log.lines().find((l) => l.msg === "weights path") as { path?: string } | undefined;
    expect(path?.path).to.match(/^set_weights: commit-reveal is off/);
  });
});
