import { expect } from "chai";
import { connectPolkadotChain, type PolkadotChain } from "../../common/chain/polkadot.js";
import { systemClock } from "../../common/clock.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { AllowListAdmission, ChainAdmission, startAdmission } from "../../router/admission.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { freePort } from "../support/redis.js";
import { type HubHarness, startHub } from "../support/tunnel-hub-harness.js";
import {
  requireSubtensorMetadata,
  SubtensorTestProvider,
  type TestSubnet,
  writeSubnet,
} from "../support/validator-chain-provider.js";

const NETUID = 92;

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
    let metadataPath: string;
    let provider: SubtensorTestProvider;
    let chain: PolkadotChain;
    let h: HubHarness | undefined;
    const clients: RawTunnelClient[] = [];

    before(function () {
      metadataPath = requireSubtensorMetadata(this);
    });
    beforeEach(async () => {
      provider = SubtensorTestProvider.fromFixture(metadataPath);
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
        clock: systemClock,
        logger: silentLogger(),
      });
    const handshake = async (harness: HubHarness, key: Hotkey) => {
      const c = await RawTunnelClient.open("grpc", harness.endpoints);
      clients.push(c);
      return c.handshake(key, { models: [{ id: "m1", maxConcurrency: 1, contextLength: 0, kinds: [] }] });
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

    it("drains the open tunnel of a hotkey deregistered at a refresh, and refuses its next hello", async () => {
      writeSubnet(chain.api, provider, subnet([{ hotkey: miner.address, permit: false, lastUpdate: 0 }]));
      let refreshed = 0;
      let revoked: Promise<number> | undefined;
      const a = new ChainAdmission({
        reader: chain,
        netuid: NETUID,
        refreshMs: 60_000,
        clock: systemClock,
        logger: silentLogger(),
        onRefreshed: () => {
          refreshed++;
          revoked = h?.hub.revokeUnadmitted("deregistered");
        },
      });
      expect(await a.refresh()).to.equal(true);
      h = await startHub({ admit: (hk) => a.admitMiner(hk) });
      const c = await RawTunnelClient.open("grpc", h.endpoints);
      clients.push(c);
      expect(
        (await c.handshake(miner, { models: [{ id: "m1", maxConcurrency: 1, contextLength: 0, kinds: [] }] }))
          .accept,
      ).to.not.equal(undefined);
      // A refresh that still lists the miner leaves its tunnel alone.
      expect(await a.refresh()).to.equal(true);
      expect(await revoked).to.equal(0);
      // Deregistered: the next successful refresh drains it.
      writeSubnet(chain.api, provider, subnet([]));
      expect(await a.refresh()).to.equal(true);
      expect(refreshed).to.equal(3);
      expect(await revoked).to.equal(1);
      const drain = await c.expect("drain");
      expect(drain.reason).to.equal("deregistered");
      expect((await c.closed).reason).to.be.a("string");
      expect(h.hub.sessions()).to.deep.equal([]);
      const again = await handshake(h, miner);
      expect(again.reject?.message).to.match(/not admitted/);
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
