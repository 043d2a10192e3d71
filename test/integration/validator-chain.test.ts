import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ApiPromise } from "@polkadot/api";
import type { Extrinsic } from "@polkadot/types/interfaces";
import { blake2AsHex } from "@polkadot/util-crypto";
import { expect } from "chai";
import { type Chain, epochIndex, firstBlockOfEpoch } from "../../common/chain/chain.js";
import { connectPolkadotChain, type PolkadotChain } from "../../common/chain/polkadot.js";
import { systemClock } from "../../common/clock.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { RouterClient } from "../../validator/router-client.js";
import { FileStateStore } from "../../validator/state-store-file.js";
import { Validator } from "../../validator/validator.js";
import { hashSchemeOnly } from "../support/hash-scheme-chain.js";
import { throwawayHotkey } from "../support/keys.js";
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

describe("validator chain (@polkadot/api on the real Subtensor metadata, no network)", () => {
  let metadataPath: string;
  let validatorKey: Hotkey;
  let minerA: Hotkey;
  let minerB: Hotkey;
  let provider: SubtensorTestProvider;
  let chain: PolkadotChain;
  let api: ApiPromise;
  let dir: string;

  before(async function () {
    metadataPath = requireSubtensorMetadata(this);
    validatorKey = await throwawayHotkey();
    minerA = await throwawayHotkey();
    minerB = await throwawayHotkey();
  });

  beforeEach(async () => {
    provider = SubtensorTestProvider.fromFixture(metadataPath, 10_000);
    chain = await connectPolkadotChain({
      provider,
      signer: validatorKey,
      logger: silentLogger(),
      inclusionTimeoutMs: 5000,
    });
    api = chain.api;
    provider.eventsFor = () => successEvents(api);
    dir = await mkdtemp(join(tmpdir(), "tc-validator-chain-"));
  });

  afterEach(async () => {
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
    commitReveal: false,
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
  const args = (ext: Extrinsic) => ext.method.args.map((a) => a.toJSON());

  it("reads the metagraph from SubtensorModule storage", async () => {
    writeSubnet(
      api,
      provider,
      subnet({ commitReveal: true, rateLimit: 50, tempo: 99, revealPeriodEpochs: 2, minAllowedWeights: 8 }),
    );
    const mg = await chain.readMetagraph(NETUID);
    expect(mg.block).to.equal(10_000);
    expect(mg.neurons).to.deep.equal([
      { uid: 0, hotkey: minerA.address, validatorPermit: false, lastUpdate: 0 },
      { uid: 1, hotkey: validatorKey.address, validatorPermit: true, lastUpdate: 9_000 },
      { uid: 2, hotkey: minerB.address, validatorPermit: false, lastUpdate: 0 },
    ]);
    expect(mg.commitRevealEnabled).to.equal(true);
    expect(mg.weightsSetRateLimit).to.equal(50);
    expect(mg.weightsVersionKey).to.equal(7n);
    expect(mg.tempo).to.equal(99);
    expect(mg.revealPeriodEpochs).to.equal(2);
    expect(mg.minAllowedWeights).to.equal(8);
    const other = await chain.readMetagraph(3);
    expect(other.neurons).to.deep.equal([]);
  });

  it("submits set_weights signed by the hotkey and reports inclusion", async () => {
    provider.setNonce(validatorKey.address, 41);
    const out = await chain.setWeights(NETUID, [0, 2], [65_535, 12], 7n);
    expect(out.ok).to.equal(true);
    expect(out.ok && out.blockNumber).to.equal(10_001);
    const ext = decode(0);
    expect(`${ext.method.section}.${ext.method.method}`).to.equal("subtensorModule.setWeights");
    expect(args(ext)).to.deep.equal([NETUID, [0, 2], [65_535, 12], 7]);
    expect(ext.isSigned).to.equal(true);
    expect(ext.signer.toString()).to.equal(validatorKey.address);
    expect(ext.nonce.toNumber()).to.equal(41);
  });

  it("reports a module error by name", async () => {
    provider.eventsFor = () => moduleErrorEvents(api, "SettingWeightsTooFast");
    const out = await chain.setWeights(NETUID, [0], [1], 0n);
    expect(out).to.include({ ok: false, error: "SubtensorModule.SettingWeightsTooFast" });
  });

  describe("through the validator", () => {
    let router: RouterStandIn;
    let client: RouterClient;

    beforeEach(async () => {
      router = await startRouterStandIn({
        sessions: [session(minerA.address), session(minerB.address)],
        usage: [
          {
            hotkey: minerA.address,
            models: [
              {
                model: "m",
                promptTokens: 30_000n,
                completionTokens: 10_000n,
                paidPromptTokens: 30_000n,
                paidCompletionTokens: 10_000n,
                served: 0n,
                failedBeforeOutput: 0n,
                failedAfterOutput: 0n,
                deadlineCut: 0n,
                requests: 4n,
                tierMultiplier: 1,
                businessPoints: 4,
              },
            ],
            promptTokens: 30_000n,
            completionTokens: 10_000n,
            paidPromptTokens: 30_000n,
            paidCompletionTokens: 10_000n,
            requests: 4n,
            businessPoints: 4,
          },
        ],
        probe: () => okProbe(50),
      });
      client = new RouterClient([router.url], { signer: validatorKey, logger: silentLogger() });
    });

    afterEach(async () => {
      client.close();
      await router.close();
    });

    const validator = async (dryRun = false, on: Chain = chain) =>
      new Validator({
        router: client,
        store: await FileStateStore.open(join(dir, "state.json")),
        chain: on,
        selfHotkey: validatorKey.address,
        settings: {
          netuid: NETUID,
          dryRun,
          probeConcurrency: 8,
          probeTimeoutMs: 2000,
          probeIntervalMs: 60_000,
          weightsIntervalMs: 60_000,
          latencyTiers: DEFAULT_LATENCY_TIERS,
        },
        clock: systemClock,
        randomBytes: (n) => randomBytes(n),
        logger: silentLogger(),
        print: () => {},
      });

    it("sets weights directly when commit-reveal is off", async () => {
      writeSubnet(api, provider, subnet());
      const v = await validator();
      await v.probeRound();
      const r = await v.scorePass({ submit: true, print: false });
      expect(r?.actions.map((a) => a.kind)).to.deep.equal(["set"]);
      const ext = decode(0);
      expect(ext.method.method).to.equal("setWeights");
      // A: base 100, business 100 → 100; B: base 100, no traffic → 10.
      expect(args(ext)).to.deep.equal([NETUID, [0, 2], [65_535, 6_554], 7]);
      expect(provider.submitted).to.have.length(1);
    });

    it("pads to the subnet's MinAllowedWeights instead of sending a vector the chain refuses", async () => {
      writeSubnet(api, provider, { ...subnet(), minAllowedWeights: 3 });
      const v = await validator();
      await v.probeRound();
      await v.scorePass({ submit: true, print: false });
      // Two miners score; the validator's own uid 1 gets the minimal weight to reach three.
      expect(args(decode(0))).to.deep.equal([NETUID, [0, 1, 2], [65_535, 1, 6_554], 7]);
    });

    it("submits nothing inside the weights rate limit", async () => {
      writeSubnet(
        api,
        provider,
        subnet({ neurons: subnet().neurons.map((n, i) => (i === 1 ? { ...n, lastUpdate: 9_950 } : n)) }),
      );
      const v = await validator();
      await v.probeRound();
      const r = await v.scorePass({ submit: true, print: false });
      expect(r?.actions).to.have.length(1);
      expect(r?.actions[0]?.kind === "wait" && r.actions[0].reason).to.match(/next allowed at 10050/);
      expect(provider.submitted).to.have.length(0);
    });

    it("submits nothing in a dry run", async () => {
      writeSubnet(api, provider, subnet());
      const v = await validator(true);
      await v.probeRound();
      const r = await v.scorePass({ submit: true, print: false });
      expect(r?.actions.map((a) => a.kind)).to.deep.equal(["set"]);
      expect(provider.submitted).to.have.length(0);
    });

    it("on a runtime with only the hash scheme, commits and a restarted validator reveals in the reveal epoch", async () => {
      writeSubnet(api, provider, subnet({ commitReveal: true }));
      const v1 = await validator(false, hashSchemeOnly(chain));
      await v1.probeRound();
      const r1 = await v1.scorePass({ submit: true, print: false });
      expect(r1?.actions.map((a) => a.kind)).to.deep.equal(["commit"]);
      const commit = decode(0);
      expect(`${commit.method.section}.${commit.method.method}`).to.equal("subtensorModule.commitWeights");
      expect(commit.signer.toString()).to.equal(validatorKey.address);
      const [netuid, committed] = args(commit) as [number, string];
      expect(netuid).to.equal(NETUID);

      // The durable state holds the salt; check the hash independently of validator/commit-hash.ts.
      const pending = await (await FileStateStore.open(join(dir, "state.json"))).pendingCommits();
      expect(pending).to.have.length(1);
      const p = pending[0];
      if (p === undefined) throw new Error("no pending commit");
      expect(p.commitBlock).to.equal(provider.submitted[0]?.blockNumber);
      const tuple = api.createType("(AccountId32, u16, Vec<u16>, Vec<u16>, Vec<u16>, u64)", [
        validatorKey.address,
        NETUID,
        [0, 2],
        [65_535, 6_554],
        p.salt,
        7n,
      ]);
      expect(committed).to.equal(blake2AsHex(tuple.toU8a(), 256));
      expect(p.hash).to.equal(committed);

      // Same epoch: a second pass waits instead of committing again.
      const r2 = await v1.scorePass({ submit: true, print: false });
      expect(r2?.actions[0]?.kind).to.equal("wait");
      expect(provider.submitted).to.have.length(1);

      // Next epoch, new process (fresh store opened from the same file).
      provider.bestNumber = firstBlockOfEpoch(epochIndex(p.commitBlock, NETUID, 360) + 1, NETUID, 360);
      const v2 = await validator(false, hashSchemeOnly(chain));
      const r3 = await v2.scorePass({ submit: true, print: false });
      // Reveal first; the chain (whose LastUpdate this fake does not move) then allows a fresh commit.
      expect(r3?.actions.map((a) => a.kind)).to.deep.equal(["reveal", "commit"]);
      const reveal = decode(1);
      expect(`${reveal.method.section}.${reveal.method.method}`).to.equal("subtensorModule.revealWeights");
      expect(args(reveal)).to.deep.equal([NETUID, [0, 2], [65_535, 6_554], p.salt, 7]);
      expect(reveal.signer.toString()).to.equal(validatorKey.address);
      const after = await (await FileStateStore.open(join(dir, "state.json"))).pendingCommits();
      expect(after.map((c) => c.hash)).to.not.include(p.hash);
      expect(after).to.have.length(1);
      expect(decode(2).method.method).to.equal("commitWeights");
    });

    it("reveals a due commit from the probe loop's reveal check, without a scoring pass", async () => {
      writeSubnet(api, provider, subnet({ commitReveal: true }));
      const v = await validator(false, hashSchemeOnly(chain));
      await v.probeRound();
      await v.scorePass({ submit: true, print: false });
      const [p] = await (await FileStateStore.open(join(dir, "state.json"))).pendingCommits();
      if (p === undefined) throw new Error("no pending commit");
      await v.revealDue();
      expect(provider.submitted).to.have.length(1);
      provider.bestNumber = firstBlockOfEpoch(epochIndex(p.commitBlock, NETUID, 360) + 1, NETUID, 360);
      await v.revealDue();
      expect(provider.submitted).to.have.length(2);
      expect(decode(1).method.method).to.equal("revealWeights");
      expect(await (await FileStateStore.open(join(dir, "state.json"))).pendingCommits()).to.deep.equal([]);
    });

    it("keeps a commit whose inclusion was not seen in time, so it is still revealed if it landed", async () => {
      writeSubnet(api, provider, subnet({ commitReveal: true }));
      provider.holdInclusion = true;
      const impatient = await connectPolkadotChain({
        provider,
        signer: validatorKey,
        logger: silentLogger(),
        inclusionTimeoutMs: 200,
      });
      try {
        const v = new Validator({
          router: client,
          store: await FileStateStore.open(join(dir, "state.json")),
          chain: hashSchemeOnly(impatient),
          selfHotkey: validatorKey.address,
          settings: {
            netuid: NETUID,
            dryRun: false,
            probeConcurrency: 8,
            probeTimeoutMs: 2000,
            probeIntervalMs: 60_000,
            weightsIntervalMs: 60_000,
            latencyTiers: DEFAULT_LATENCY_TIERS,
          },
          clock: systemClock,
          randomBytes: (n) => randomBytes(n),
          logger: silentLogger(),
          print: () => {},
        });
        await v.probeRound();
        const r = await v.scorePass({ submit: true, print: false });
        expect(r?.outcomes[0]).to.include({ ok: false, uncertain: true });
        expect(await (await FileStateStore.open(join(dir, "state.json"))).pendingCommits()).to.have.length(1);
      } finally {
        await impatient.close();
      }
    });

    it("keeps a commit whose reveal failed for a retry, and drops one the chain says cannot match", async () => {
      writeSubnet(api, provider, subnet({ commitReveal: true }));
      const v = await validator(false, hashSchemeOnly(chain));
      await v.probeRound();
      await v.scorePass({ submit: true, print: false });
      const store = await FileStateStore.open(join(dir, "state.json"));
      const [p] = await store.pendingCommits();
      if (p === undefined) throw new Error("no pending commit");
      provider.bestNumber = firstBlockOfEpoch(epochIndex(p.commitBlock, NETUID, 360) + 1, NETUID, 360);
      provider.eventsFor = () => moduleErrorEvents(api, "RevealTooEarly");
      const r1 = await (await validator(false, hashSchemeOnly(chain))).scorePass({
        submit: true,
        print: false,
      });
      expect(r1?.outcomes[0]).to.include({ ok: false, error: "SubtensorModule.RevealTooEarly" });
      expect(await (await FileStateStore.open(join(dir, "state.json"))).pendingCommits()).to.have.length(1);
      provider.eventsFor = () => moduleErrorEvents(api, "InvalidRevealCommitHashNotMatch");
      await (await validator(false, hashSchemeOnly(chain))).scorePass({ submit: true, print: false });
      expect(await (await FileStateStore.open(join(dir, "state.json"))).pendingCommits()).to.deep.equal([]);
    });
  });
});
