import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ApiPromise } from "@polkadot/api";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { expect } from "chai";
import { Redis } from "ioredis";
import { connectPolkadotChain, type PolkadotChain } from "../../common/chain/polkadot.js";
import { type Clock, systemClock } from "../../common/clock.js";
import { TensorClawError } from "../../common/errors.js";
import { silentLogger } from "../../common/logger.js";
import { type ApiKeyStore, ApiKeys, FileApiKeyStore, RedisApiKeyStore } from "../../router/api/keys.js";
import type { BillingStore, CreditEntry } from "../../router/billing/billing.js";
import { DepositAddresses } from "../../router/billing/deposits/address.js";
import { PolkadotDepositChain } from "../../router/billing/deposits/chain.js";
import { DEPOSIT_DEFAULTS } from "../../router/billing/deposits/options.js";
import {
  type RouterDepositSettings,
  startDepositWatcher,
  startRouterDeposits,
} from "../../router/billing/deposits/start.js";
import { DepositWatcher, type KeyLister } from "../../router/billing/deposits/watcher.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { RedisBilling } from "../../router/billing/redis.js";
import { DEFAULT_LEDGER_OPTIONS } from "../../router/ledger/ledger.js";
import {
  DepositChainProvider,
  type TestTransfer,
  transferBlockEvents,
} from "../support/deposit-chain-provider.js";
import { FakeClock } from "../support/fake-clock.js";
import { throwawayHotkey } from "../support/keys.js";
import { memoryLogger } from "../support/memory-logger.js";
import { pollUntil } from "../support/poll.js";
import { freePort, randomPrefix, startRedis, type TestRedis } from "../support/redis.js";
import { requireSubtensorMetadata } from "../support/validator-chain-provider.js";

const LIMITS = { requestsPerMinute: 60, tokensPerMinute: 100_000 };
/** 350.5 USD per TAO. */
const CREDITS_PER_TAO = 350.5;
const MICROS_PER_TAO = 350_500_000n;
const CONFIRMATIONS = 3;
const START = 1000;

/** A billing store to test against, and how to reopen it as a restarted router would. */
interface StoreFixture {
  readonly name: string;
  /** Once per suite (a Redis server). */
  before(): Promise<void>;
  after(): Promise<void>;
  /** Once per test: a fresh, empty store. */
  setup(dir: string): Promise<void>;
  /** The store as a (re)started router opens it. */
  open(): Promise<BillingStore>;
  keyStore(dir: string): ApiKeyStore;
  teardown(): Promise<void>;
}

const FIXTURES: StoreFixture[] = [
  (() => {
    let path = "";
    return {
      name: "embedded",
      before: async () => {},
      after: async () => {},
      setup: async (dir: string) => {
        path = join(dir, "billing.jsonl");
      },
      // Each open is a new process's view of the same journal: a restart.
      open: () => EmbeddedBilling.open({ ...DEFAULT_LEDGER_OPTIONS, path, nowMs: Date.now() }),
      keyStore: (dir: string) => new FileApiKeyStore(join(dir, "api-keys.json")),
      teardown: async () => {},
    };
  })(),
  (() => {
    let server: TestRedis | undefined;
    let prefix = "";
    const clients: Redis[] = [];
    const client = () => {
      const c = new Redis((server as TestRedis).url, { maxRetriesPerRequest: 0 });
      clients.push(c);
      return c;
    };
    return {
      name: "Redis",
      before: async () => {
        server = await startRedis();
      },
      after: async () => {
        await server?.stop();
      },
      setup: async () => {
        prefix = randomPrefix();
      },
      // Each open is a new connection, as a restarted router makes.
      open: async () => new RedisBilling(client(), DEFAULT_LEDGER_OPTIONS, prefix),
      keyStore: () => new RedisApiKeyStore(client(), prefix),
      teardown: async () => {
        for (const c of clients.splice(0)) c.disconnect();
      },
    };
  })(),
];

for (const fx of FIXTURES) {
  describe(`TAO deposits over the ${fx.name} billing store (@polkadot/api on the Subtensor metadata)`, () => {
    let metadataPath: string;
    let mnemonic: string;
    let dir: string;
    let provider: DepositChainProvider;
    let chain: PolkadotChain;
    let api: ApiPromise;
    let billing: BillingStore;
    let keys: ApiKeys;
    let addresses: DepositAddresses;
    let payer: string;
    let stranger: string;

    before(async function () {
      metadataPath = requireSubtensorMetadata(this);
      await fx.before();
      mnemonic = mnemonicGenerate(12);
      addresses = await DepositAddresses.fromMnemonic(mnemonic);
      payer = (await throwawayHotkey()).address;
      stranger = (await throwawayHotkey()).address;
    });

    after(async () => {
      await fx.after();
    });

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "tc-deposits-"));
      await fx.setup(dir);
      billing = await fx.open();
      keys = new ApiKeys(fx.keyStore(dir));
      provider = DepositChainProvider.fromFixture(metadataPath, START);
      chain = await connectPolkadotChain({ provider, logger: silentLogger() });
      api = chain.api;
    });

    afterEach(async () => {
      await chain?.close();
      await billing?.close();
      await fx.teardown();
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    const watcher = (store = billing, clock: Clock = systemClock, lister: KeyLister = keys) =>
      new DepositWatcher({
        chain: new PolkadotDepositChain(api),
        billing: store,
        keys: lister,
        addresses,
        microsPerTao: MICROS_PER_TAO,
        confirmations: CONFIRMATIONS,
        clock,
        logger: silentLogger(),
      });

    /** Puts transfers in block `n`; returns their event indexes. */
    const block = (n: number, transfers: readonly TestTransfer[]): number[] => {
      const { hex, eventIndexes } = transferBlockEvents(api, transfers);
      provider.setEvents(n, hex);
      return eventIndexes;
    };
    const newKey = async (name: string) => (await keys.create(name, LIMITS, Date.now())).record.id;
    const balance = async (keyId: string) => (await billing.account(keyId, Date.now())).balanceMicros;

    it("credits a transfer to a key's deposit address once, rounded down to the micro; other transfers are ignored", async () => {
      const alice = await newKey("alice");
      const bob = await newKey("bob");
      const w = watcher();
      // First pass on this chain: starts at the newest confirmed block.
      expect(await w.pass()).to.deep.include({ blocks: 1, credited: 0, caughtUp: true });
      const [toAlice, , , fromAlice] = block(START + 1, [
        { from: payer, to: addresses.address(alice), amountRao: 1_234_567_891n },
        { from: payer, to: stranger, amountRao: 5_000_000_000n },
        { from: payer, to: addresses.treasuryAddress, amountRao: 7_000_000_000n },
        { from: addresses.address(alice), to: payer, amountRao: 3_000_000_000n },
      ]);
      expect(fromAlice).to.equal(10);
      provider.finalized = START + 1 + CONFIRMATIONS;
      const r = await w.pass();
      expect(r).to.deep.include({ blocks: 4, credited: 1, caughtUp: true });
      expect(r.cursor?.number).to.equal(START + 1);
      // floor(1.234567891 TAO × 350.5 USD) = 432.716045 USD (…7955 dropped).
      expect(await balance(alice)).to.equal(432_716_045);
      const entries = await billing.entries(alice, 10);
      expect(entries).to.have.length(1);
      expect(entries[0]).to.deep.include({
        id: `tao:${DepositChainProvider.hashOf(START + 1)}:${toAlice}`,
        keyId: alice,
        amountMicros: 432_716_045,
        source: "deposit",
      });
      expect(entries[0]?.note)
        .to.contain("1.234567891 TAO")
        .and.contain(payer)
        .and.contain(`#${START + 1}`);
      expect(await billing.entries(bob, 10)).to.deep.equal([]);
      expect(await balance(bob)).to.equal(0);
      // An unmetered key is metered from its first deposit (someone paid for it).
      expect(await billing.settings(alice)).to.deep.equal({ metered: true, budgetDailyMicros: null });
      expect(await billing.settings(bob)).to.equal(undefined);
    });

    it("waits for --deposit-confirmations finalized blocks on top", async () => {
      const alice = await newKey("alice");
      const w = watcher();
      await w.pass();
      block(START + 2, [{ from: payer, to: addresses.address(alice), amountRao: 2n * 1_000_000_000n }]);
      provider.finalized = START + 2 + CONFIRMATIONS - 1;
      expect(await w.pass()).to.deep.include({ credited: 0, caughtUp: true });
      expect((await w.pass()).cursor?.number).to.equal(START + 1);
      expect(provider.eventReads.get(START + 2)).to.equal(undefined);
      expect(await balance(alice)).to.equal(0);
      provider.finalized += 1;
      expect(await w.pass()).to.deep.include({ blocks: 1, credited: 1 });
      expect(await balance(alice)).to.equal(701_000_000);
    });

    it("a block read again (cursor rewound) credits nothing twice", async () => {
      const alice = await newKey("alice");
      const w = watcher();
      await w.pass();
      block(START + 1, [
        { from: payer, to: addresses.address(alice), amountRao: 1_000_000_000n },
        { from: stranger, to: addresses.address(alice), amountRao: 1_000_000_000n },
      ]);
      provider.finalized = START + 1 + CONFIRMATIONS;
      expect(await w.pass()).to.deep.include({ credited: 2 });
      expect(await balance(alice)).to.equal(701_000_000);
      // As after a crash between the credits and the cursor write.
      await billing.setCursor(w.cursorName, JSON.stringify({ block: START - 5, hash: "0x" }));
      expect(await w.pass()).to.deep.include({ blocks: 6, credited: 0 });
      expect(provider.eventReads.get(START + 1)).to.equal(2);
      expect(await balance(alice)).to.equal(701_000_000);
      expect(await billing.entries(alice, 10)).to.have.length(2);
    });

    it("a credit that failed after the store applied it (replicas did not confirm) is counted and logged once, on the pass that finds it applied", async () => {
      const alice = await newKey("alice");
      let failed = false;
      // As RedisBilling with --redis-wait-replicas when the replicas miss the write: applied, then refused.
      const unconfirmed = new Proxy(billing, {
        get(target, prop) {
          if (prop === "credit") {
            return async (entry: CreditEntry) => {
              const applied = await target.credit(entry);
              if (failed) return applied;
              failed = true;
              throw new TensorClawError(
                "unavailable",
                "redis: 0 of 1 replicas acknowledged the writes within 300 ms",
              );
            };
          }
          const v = Reflect.get(target, prop, target) as unknown;
          return typeof v === "function" ? v.bind(target) : v;
        },
      });
      const mem = memoryLogger();
      const w = new DepositWatcher({
        chain: new PolkadotDepositChain(api),
        billing: unconfirmed,
        keys,
        addresses,
        microsPerTao: MICROS_PER_TAO,
        confirmations: CONFIRMATIONS,
        clock: systemClock,
        logger: mem.logger,
      });
      await w.pass();
      block(START + 1, [{ from: payer, to: addresses.address(alice), amountRao: 1_000_000_000n }]);
      provider.finalized = START + 1 + CONFIRMATIONS;
      await w.pass().then(
        () => expect.fail("a pass whose credit failed succeeded"),
        (err: Error) => expect(err.message).to.contain("replicas acknowledged"),
      );
      expect(await w.pass()).to.deep.include({ credited: 1 });
      expect(mem.lines().filter((l) => l.msg === "TAO deposit credited")).to.have.length(1);
      expect(await balance(alice)).to.equal(350_500_000);
      // Read once more: nothing twice, in the balance or the log.
      await billing.setCursor(w.cursorName, JSON.stringify({ block: START - 5, hash: "0x" }));
      expect(await w.pass()).to.deep.include({ credited: 0 });
      expect(mem.lines().filter((l) => l.msg === "TAO deposit credited")).to.have.length(1);
      expect(await balance(alice)).to.equal(350_500_000);
    });

    it("a restarted router resumes from the stored cursor: blocks made while it was down are credited, none twice", async () => {
      const alice = await newKey("alice");
      const bob = await newKey("bob");
      await watcher().pass();
      block(START + 1, [{ from: payer, to: addresses.address(alice), amountRao: 1_000_000_000n }]);
      provider.finalized = START + 1 + CONFIRMATIONS;
      expect(await watcher().pass()).to.deep.include({ credited: 1 });
      await billing.close();

      // Down: more blocks, deposits to both keys.
      block(START + 6, [{ from: payer, to: addresses.address(bob), amountRao: 500_000_000n }]);
      block(START + 9, [{ from: payer, to: addresses.address(alice), amountRao: 2n }]);
      block(START + 12, [{ from: payer, to: addresses.address(alice), amountRao: 10_000_000_000n }]);
      provider.finalized = START + 12 + CONFIRMATIONS;

      billing = await fx.open();
      const r = await watcher(billing).pass();
      // Resumed after START+1, the last block done: it is not read again.
      expect(provider.eventReads.get(START + 1)).to.equal(1);
      expect(provider.eventReads.get(START + 2)).to.equal(1);
      expect(r).to.deep.include({ blocks: 11, credited: 2, caughtUp: true });
      expect(r.cursor?.number).to.equal(START + 12);
      // 2 rao is worth 0.000000701 USD: below one micro, not credited.
      expect(await balance(alice)).to.equal(350_500_000 + 3_505_000_000);
      expect(await balance(bob)).to.equal(175_250_000);
      expect((await billing.entries(alice, 10)).map((e) => e.amountMicros)).to.have.members([
        350_500_000, 3_505_000_000,
      ]);
    });

    it("two router replicas watching the same chain on one store credit each deposit once", async () => {
      const alice = await newKey("alice");
      const other = await fx.open();
      try {
        await watcher().pass();
        block(START + 1, [
          { from: payer, to: addresses.address(alice), amountRao: 1_000_000_000n },
          { from: stranger, to: addresses.address(alice), amountRao: 2_000_000_000n },
        ]);
        provider.finalized = START + 1 + CONFIRMATIONS;
        const [a, b] = await Promise.all([watcher().pass(), watcher(other).pass()]);
        expect((a?.credited ?? 0) + (b?.credited ?? 0)).to.equal(2);
        // Read through a store opened now, which sees what both wrote.
        const view = await fx.open();
        try {
          expect((await view.account(alice, Date.now())).balanceMicros).to.equal(3 * 350_500_000);
          expect(await view.entries(alice, 10)).to.have.length(2);
        } finally {
          await view.close();
        }
      } finally {
        await other.close();
      }
    });

    it("keeps the settings of a key configured before its deposit", async () => {
      const carol = await newKey("carol");
      await billing.configure(carol, { metered: true, budgetDailyMicros: 2_000_000 }, Date.now());
      const w = watcher();
      await w.pass();
      block(START + 1, [{ from: payer, to: addresses.address(carol), amountRao: 1_000_000_000n }]);
      provider.finalized = START + 1 + CONFIRMATIONS;
      await w.pass();
      expect(await billing.settings(carol)).to.deep.equal({ metered: true, budgetDailyMicros: 2_000_000 });
      expect(await balance(carol)).to.equal(350_500_000);
    });

    it("reads the key list again after keysRefreshMs: a key created while it runs gets its deposits", async () => {
      const clock = new FakeClock();
      const w = watcher(billing, clock);
      await w.pass();
      const dave = await newKey("dave");
      block(START + 1, [{ from: payer, to: addresses.address(dave), amountRao: 1_000_000_000n }]);
      provider.finalized = START + 1 + CONFIRMATIONS;
      await clock.advance(DEPOSIT_DEFAULTS.timings.keysRefreshMs);
      expect(await w.pass()).to.deep.include({ credited: 1 });
      expect(await balance(dave)).to.equal(350_500_000);
    });

    it("on each refresh reads only the key count, and the key ids again only when it changed", async () => {
      const clock = new FakeClock();
      const calls = { count: 0, ids: 0 };
      const counting: KeyLister = {
        count: () => {
          calls.count += 1;
          return keys.count();
        },
        ids: () => {
          calls.ids += 1;
          return keys.ids();
        },
      };
      const erin = await newKey("erin");
      const w = watcher(billing, clock, counting);
      await w.pass();
      expect(calls).to.deep.equal({ count: 1, ids: 1 });
      block(START + 1, [{ from: payer, to: addresses.address(erin), amountRao: 1_000_000_000n }]);
      provider.finalized = START + 1 + CONFIRMATIONS;
      await clock.advance(DEPOSIT_DEFAULTS.timings.keysRefreshMs);
      expect(await w.pass()).to.deep.include({ credited: 1 });
      expect(calls).to.deep.equal({ count: 2, ids: 1 });
      // A key added: the next refresh sees the count move and reads the ids.
      const frank = await newKey("frank");
      block(START + 2, [{ from: payer, to: addresses.address(frank), amountRao: 2_000_000_000n }]);
      provider.finalized = START + 2 + CONFIRMATIONS;
      await clock.advance(DEPOSIT_DEFAULTS.timings.keysRefreshMs);
      expect(await w.pass()).to.deep.include({ credited: 1 });
      expect(calls).to.deep.equal({ count: 3, ids: 2 });
      expect(await balance(erin)).to.equal(350_500_000);
      expect(await balance(frank)).to.equal(701_000_000);
    });

    it("started by startDepositWatcher: chain errors are logged and retried with backoff, never thrown", async () => {
      const alice = await newKey("alice");
      const clock = new FakeClock();
      const mem = memoryLogger();
      const running = await startDepositWatcher({
        api,
        billing,
        keys,
        creditsPerTao: CREDITS_PER_TAO,
        confirmations: CONFIRMATIONS,
        mnemonic,
        logger: mem.logger,
        clock,
        timings: { pollMs: 6000, retryMinMs: 1000, retryMaxMs: 4000 },
      });
      try {
        await clock.untilPending(1); // first pass done, waiting pollMs
        block(START + 1, [{ from: payer, to: addresses.address(alice), amountRao: 1_000_000_000n }]);
        provider.finalized = START + 1 + CONFIRMATIONS;
        provider.failing = true;
        await clock.advance(6000);
        await clock.untilPending(1);
        expect(clock.scheduled().map((t) => t.inMs)).to.deep.equal([1000]);
        await clock.advance(1000);
        await clock.untilPending(1);
        expect(clock.scheduled().map((t) => t.inMs)).to.deep.equal([2000]);
        const warnings = mem.lines().filter((l) => l.msg === "TAO deposits: pass failed, retrying");
        expect(warnings).to.have.length(2);
        expect(await balance(alice)).to.equal(0);
        provider.failing = false;
        await clock.advance(2000);
        await clock.untilPending(1);
        expect(clock.scheduled().map((t) => t.inMs)).to.deep.equal([6000]);
        expect(await balance(alice)).to.equal(350_500_000);
        expect(JSON.stringify(mem.lines())).to.not.contain(mnemonic.split(" ").slice(0, 3).join(" "));
      } finally {
        await running.stop();
      }
    });
  });
}

describe("TAO deposits in the router (startRouterDeposits)", () => {
  const MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow";
  const keys = { count: async () => 0, ids: async () => [] };
  const settings = (over: Partial<RouterDepositSettings> = {}): RouterDepositSettings => ({
    chain: "ws://127.0.0.1:1",
    creditsPerTao: 300,
    depositConfirmations: 3,
    treasuryMnemonic: MNEMONIC,
    ...over,
  });
  let billing: EmbeddedBilling;

  beforeEach(async () => {
    billing = await EmbeddedBilling.open({ ...DEFAULT_LEDGER_OPTIONS, nowMs: Date.now() });
  });
  afterEach(async () => {
    await billing.close();
  });

  it("starts nothing unless --chain, --credits-per-tao and the mnemonic are all there, or without API keys", async () => {
    const mem = memoryLogger();
    const deps = { billing, keys, logger: mem.logger };
    expect(await startRouterDeposits(settings({ creditsPerTao: undefined }), deps)).to.equal(undefined);
    expect(await startRouterDeposits(settings({ treasuryMnemonic: undefined }), deps)).to.equal(undefined);
    expect(await startRouterDeposits(settings({ chain: undefined }), deps)).to.equal(undefined);
    expect(await startRouterDeposits(settings(), { ...deps, keys: undefined })).to.equal(undefined);
    expect(mem.lines().map((l) => l.msg)).to.deep.equal([
      "TAO deposits off: the treasury mnemonic is set but --credits-per-tao is not",
      "TAO deposits off: the router serves without API keys (--no-auth)",
    ]);
  });

  it("refuses a bad mnemonic at start-up, without repeating it", async () => {
    let err: unknown;
    try {
      await startRouterDeposits(settings({ treasuryMnemonic: `${MNEMONIC.slice(0, -6)}zebra` }), {
        billing,
        keys,
        logger: silentLogger(),
      });
    } catch (e) {
      err = e;
    }
    expect((err as Error).message)
      .to.contain("TENSORCLAW_TREASURY_MNEMONIC")
      .and.not.contain("zebra");
  });

  it("an unreachable chain is retried in the background, never thrown; stop ends it", async () => {
    const mem = memoryLogger();
    const port = await freePort();
    const running = await startRouterDeposits(settings({ chain: `ws://127.0.0.1:${port}` }), {
      billing,
      keys,
      logger: mem.logger,
    });
    expect(running).to.not.equal(undefined);
    await pollUntil(
      () => mem.lines().some((l) => l.msg === "TAO deposits: cannot reach the chain, retrying"),
      { what: "a logged connection failure", timeoutMs: 10_000 },
    );
    await running?.stop();
    expect(JSON.stringify(mem.lines())).to.not.contain("legal winner");
  });
});
