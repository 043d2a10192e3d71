import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { AllowListAdmission, ChainAdmission, startAdmission } from "../../router/admission.js";
import { connectPolkadotChain, type PolkadotChain } from "../../validator/chain-polkadot.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { freePort } from "../support/redis.js";
import { type HubHarness, startHub } from "../support/tunnel-hub-harness.js";
import {
  SubtensorTestProvider,
  subtensorMetadataPath,
  type TestSubnet,
  writeSubnet,
} from "../support/validator-chain-provider.js";

const NETUID = 92;
const fixture = subtensorMetadataPath();

describe("router admission", () => {
  let miner: Hotkey;
  let validator: Hotkey;
  let stranger: Hotkey;

  before(async () => {
    miner = await throwawayHotkey();
    validator = await throwawayHotkey();
    stranger = await throwawayHotkey();
  });

  it("starts allow-lists without a chain, and names an unreachable chain", async () => {
    const a = await startAdmission({
      chain: undefined,
      netuid: NETUID,
      minersAllow: [],
      validators: [validator.address],
      logger: silentLogger(),
    });
    expect(a.policy.authorizeValidator(validator.address)).to.equal(true);
    await a.stop();
    const chain = `ws://127.0.0.1:${await freePort()}`;
    const err = await startAdmission({
      chain,
      netuid: NETUID,
      minersAllow: [],
      validators: [],
      logger: silentLogger(),
    }).then(
      () => expect.fail("expected an error"),
      (e: unknown) => e,
    );
    expect((err as Error).message).to.contain(`cannot reach Subtensor at ${chain}`);
  });

  it("without a chain: allow-lists from config, validators fail closed", () => {
    const open = new AllowListAdmission([], [validator.address]);
    expect(open.admitMiner(stranger.address)).to.equal(true);
    expect(open.authorizeValidator(validator.address)).to.equal(true);
    expect(open.authorizeValidator(stranger.address)).to.equal(false);
    const closed = new AllowListAdmission([miner.address], []);
    expect(closed.admitMiner(miner.address)).to.equal(true);
    expect(closed.admitMiner(stranger.address)).to.equal(false);
    expect(closed.authorizeValidator(validator.address)).to.equal(false);
  });

  describe("with a chain (real metadata, in-process provider)", () => {
    let provider: SubtensorTestProvider;
    let chain: PolkadotChain;
    let h: HubHarness | undefined;
    const clients: RawTunnelClient[] = [];

    before(function () {
      if ("missing" in fixture) {
        console.log(`      skipped: ${fixture.missing}`);
        this.skip();
      }
    });
    beforeEach(async () => {
      if ("missing" in fixture) return;
      provider = SubtensorTestProvider.fromFixture(fixture.path);
      chain = await connectPolkadotChain({ provider, logger: silentLogger() });
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) c.destroy();
      await h?.close();
      h = undefined;
      await chain?.close();
    });

    const subnet = (neurons: TestSubnet["neurons"]): TestSubnet => ({
      netuid: NETUID,
      neurons,
      commitReveal: false,
      rateLimit: 100,
      versionKey: 0n,
      tempo: 360,
      revealPeriodEpochs: 1,
    });
    const admission = () =>
      new ChainAdmission({
        reader: chain,
        netuid: NETUID,
        refreshMs: 60_000,
        clock: Date.now,
        logger: silentLogger(),
      });
    const handshake = async (harness: HubHarness, key: Hotkey) => {
      const c = await RawTunnelClient.open("grpc", harness.endpoints);
      clients.push(c);
      return c.handshake(key, { models: [{ id: "m1", maxConcurrency: 1, contextLength: 0 }] });
    };

    it("admits nobody before the first read", () => {
      const a = admission();
      expect(a.admitMiner(miner.address)).to.equal(false);
      expect(a.authorizeValidator(validator.address)).to.equal(false);
    });

    it("opens tunnels only for registered hotkeys and validator calls only for permits", async () => {
      writeSubnet(
        chain.api,
        provider,
        subnet([
          { hotkey: miner.address, permit: false, lastUpdate: 0 },
          { hotkey: validator.address, permit: true, lastUpdate: 0 },
        ]),
      );
      const a = admission();
      expect(await a.start()).to.equal(true);
      a.stop();
      expect(a.authorizeValidator(validator.address)).to.equal(true);
      expect(a.authorizeValidator(miner.address)).to.equal(false);
      expect(a.authorizeValidator(stranger.address)).to.equal(false);

      h = await startHub({ admit: (hk) => a.admitMiner(hk) });
      const ok = await handshake(h, miner);
      expect(ok.accept?.sessionId).to.be.a("string");
      const refused = await handshake(h, stranger);
      expect(refused.accept).to.equal(undefined);
      expect(refused.reject?.message).to.match(/not admitted/);
    });

    it("picks up registrations on refresh and keeps the last snapshot when the chain fails", async () => {
      writeSubnet(chain.api, provider, subnet([{ hotkey: miner.address, permit: false, lastUpdate: 0 }]));
      const a = admission();
      await a.refresh();
      expect(a.admitMiner(stranger.address)).to.equal(false);
      writeSubnet(
        chain.api,
        provider,
        subnet([
          { hotkey: miner.address, permit: false, lastUpdate: 0 },
          { hotkey: stranger.address, permit: true, lastUpdate: 0 },
        ]),
      );
      expect(await a.refresh()).to.equal(true);
      expect(a.admitMiner(stranger.address)).to.equal(true);
      expect(a.authorizeValidator(stranger.address)).to.equal(true);
      provider.failing = true;
      expect(await a.refresh()).to.equal(false);
      expect(a.admitMiner(miner.address)).to.equal(true);
      expect(a.membership?.registered.size).to.equal(2);
    });
  });
});
