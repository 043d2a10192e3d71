import { Keyring } from "@polkadot/keyring";
import {
  cryptoWaitReady,
  encodeAddress,
  keyExtractPath,
  mnemonicGenerate,
  mnemonicValidate,
  sr25519DerivePublic,
} from "@polkadot/util-crypto";
import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import {
  checkTreasuryMnemonic,
  DepositAddresses,
  depositPath,
} from "../../router/billing/deposits/address.js";
import {
  decodeCursor,
  depositDecision,
  depositEntryId,
  encodeCursor,
} from "../../router/billing/deposits/credit.js";
import { DEPOSIT_DEFAULTS } from "../../router/billing/deposits/options.js";
import { microsPerTao } from "../../router/billing/deposits/start.js";
import { formatTao, MAX_CREDIT_MICROS, taoToMicros } from "../../router/billing/money.js";
import { parseRouterCommand, ROUTER_DEFAULTS } from "../../router/config.js";

const HASH = `0x${"ab".repeat(32)}`;

describe("TAO deposits: addresses", () => {
  let mnemonic: string;
  let addresses: DepositAddresses;

  before(async () => {
    await cryptoWaitReady();
    mnemonic = mnemonicGenerate(12);
    addresses = await DepositAddresses.fromMnemonic(mnemonic);
  });

  it("derives the same address for the same mnemonic and key id, another for another id or mnemonic", async () => {
    const again = await DepositAddresses.fromMnemonic(`  ${mnemonic.replace(/ /g, "   ")} `);
    const a = addresses.address("key_0123456789abcdef");
    expect(again.address("key_0123456789abcdef")).to.equal(a);
    expect(addresses.address("key_0123456789abcdee")).to.not.equal(a);
    const other = await DepositAddresses.fromMnemonic(mnemonicGenerate(12));
    expect(other.address("key_0123456789abcdef")).to.not.equal(a);
    expect(a).to.match(/^5[1-9A-HJ-NP-Za-km-z]{47}$/);
  });

  it("is the keyring's hard path <mnemonic>//tensorclaw//deposit//<id>, which the operator re-derives to sweep", () => {
    const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
    const id = "key_00ff00ff00ff00ff";
    expect(depositPath(id)).to.equal("//tensorclaw//deposit//key_00ff00ff00ff00ff");
    expect(keyring.createFromUri(`${mnemonic}//tensorclaw//deposit//${id}`).address).to.equal(
      addresses.address(id),
    );
  });

  it("cannot be had from the treasury's public key: the soft path, which can, gives another address", () => {
    const keyring = new Keyring({ type: "sr25519", ss58Format: 42 });
    const id = "key_1111222233334444";
    const root = keyring.createFromUri(mnemonic);
    // What anyone holding only the public key can compute: soft derivation of the public key.
    let pub = root.publicKey;
    for (const j of keyExtractPath(`/tensorclaw/deposit/${id}`).path) {
      expect(j.isSoft).to.equal(true);
      pub = sr25519DerivePublic(pub, j.chainCode);
    }
    const softFromPublic = encodeAddress(pub, 42);
    // The check is real: the public derivation is exactly the keyring's soft path.
    expect(keyring.createFromUri(`${mnemonic}/tensorclaw/deposit/${id}`).address).to.equal(softFromPublic);
    expect(addresses.address(id)).to.not.equal(softFromPublic);
    for (const j of keyExtractPath(depositPath(id)).path) expect(j.isHard).to.equal(true);
  });

  it("refuses a key id that is not one (it would change the path)", () => {
    for (const bad of ["", "key/x", "key//x", "a b", "x".repeat(65)]) {
      expect(() => addresses.address(bad), bad).to.throw(TensorClawError, /not an API key id/);
    }
  });

  it("refuses a bad mnemonic without repeating it", async () => {
    const words = mnemonic.split(" ");
    // A last word carries 4 checksum bits, so any one replacement is still valid 1 time in 16:
    // take the first candidate whose checksum really fails.
    const bad = ["zoo", "abandon", "ability", "able", "about", "above"]
      .map((w) => [...words.slice(0, 11), w].join(" "))
      .find((m) => m !== mnemonic && !mnemonicValidate(m));
    if (bad === undefined) throw new Error("no invalid variant of the mnemonic among the candidates");
    for (const m of [bad, `${mnemonic}//hard`, "//Alice", "not a mnemonic at all"]) {
      let err: unknown;
      try {
        await DepositAddresses.fromMnemonic(m);
      } catch (e) {
        err = e;
      }
      expect(err, m).to.be.instanceOf(TensorClawError);
      expect((err as TensorClawError).code).to.equal("config_invalid");
      expect((err as Error).message).to.contain("TENSORCLAW_TREASURY_MNEMONIC");
      expect((err as Error).message).to.not.contain(words.slice(1, 4).join(" "));
    }
    expect(checkTreasuryMnemonic(` ${mnemonic}\n`)).to.equal(mnemonic);
  });
});

describe("TAO deposits: amounts", () => {
  it("converts rao to micros exactly, rounding down", () => {
    expect(taoToMicros(1_000_000_000n, 350_500_000n)).to.equal(350_500_000n);
    expect(taoToMicros(1_234_567_891n, 350_500_000n)).to.equal(432_716_045n);
    expect(taoToMicros(2n, 350_500_000n)).to.equal(0n);
    expect(taoToMicros(3n, 350_500_000n)).to.equal(1n);
    // No double rounding anywhere: u64::MAX rao at 1 micro per TAO.
    expect(taoToMicros(18_446_744_073_709_551_615n, 1n)).to.equal(18_446_744_073n);
    expect(taoToMicros(999_999_999n, 1_000_000_000n)).to.equal(999_999_999n);
    expect(() => taoToMicros(-1n, 1n)).to.throw(RangeError);
  });

  it("prints TAO exactly", () => {
    expect(formatTao(1_500_000_000n)).to.equal("1.5");
    expect(formatTao(1n)).to.equal("0.000000001");
    expect(formatTao(42_000_000_000n)).to.equal("42");
    expect(formatTao(18_446_744_073_709_551_615n)).to.equal("18446744073.709551615");
  });

  it("reads --credits-per-tao as micros per TAO, positive", () => {
    expect(microsPerTao(350.5)).to.equal(350_500_000n);
    expect(microsPerTao(0.000001)).to.equal(1n);
    for (const bad of [0, -1, 0.0000004, Number.NaN]) {
      expect(() => microsPerTao(bad), String(bad)).to.throw(TensorClawError, /--credits-per-tao/);
    }
  });

  it("decides a deposit: an entry per (block hash, event index), dust and oversize left out", () => {
    const t = { eventIndex: 7, from: "5From", to: "5To", amountRao: 2_500_000_000n };
    const d = depositDecision(t, { number: 123, hash: HASH }, "key_a", 10_000_000n, 42);
    expect(d).to.deep.equal({
      kind: "credit",
      entry: {
        id: `tao:${HASH}:7`,
        keyId: "key_a",
        amountMicros: 25_000_000,
        note: "TAO deposit: 2.5 TAO from 5From in block #123",
        source: "deposit",
        atMs: 42,
      },
    });
    expect(depositEntryId(HASH, 0)).to.equal(`tao:${HASH}:0`);
    expect(
      depositDecision({ ...t, amountRao: 99n }, { number: 1, hash: HASH }, "k", 10_000_000n, 0),
    ).to.deep.equal({ kind: "dust", amountRao: 99n });
    const huge = depositDecision(
      { ...t, amountRao: 10n ** 18n },
      { number: 1, hash: HASH },
      "k",
      10_000_000n,
      0,
    );
    expect(huge.kind).to.equal("too_large");
    expect(huge.kind === "too_large" && huge.micros > BigInt(MAX_CREDIT_MICROS)).to.equal(true);
  });

  it("stores its cursor as JSON and refuses a malformed one", () => {
    expect(decodeCursor(encodeCursor({ number: 77, hash: HASH }))).to.deep.equal({ number: 77, hash: HASH });
    for (const bad of [
      "",
      "77",
      "{}",
      '{"block":-1,"hash":"0x"}',
      '{"block":1.5,"hash":"0x"}',
      '{"block":1}',
    ]) {
      expect(() => decodeCursor(bad), bad).to.throw(/malformed deposit cursor/);
    }
  });
});

describe("TAO deposits: router settings", () => {
  const MNEMONIC = "legal winner thank year wave sausage worth useful legal winner thank yellow";
  const chain = ["--chain", "ws://127.0.0.1:9944"];

  it("defaults to no deposits and 3 confirmations", () => {
    const { config } = parseRouterCommand([], {});
    expect(config.creditsPerTao).to.equal(undefined);
    expect(config.depositConfirmations).to.equal(DEPOSIT_DEFAULTS.confirmations).and.equal(3);
    expect(ROUTER_DEFAULTS.depositConfirmations).to.equal(3);
  });

  it("takes --credits-per-tao with --chain and the mnemonic in the environment", () => {
    const { config } = parseRouterCommand(
      [...chain, "--credits-per-tao", "350.5", "--deposit-confirmations", "0"],
      { TENSORCLAW_TREASURY_MNEMONIC: MNEMONIC },
    );
    expect(config.creditsPerTao).to.equal(350.5);
    expect(config.depositConfirmations).to.equal(0);
  });

  it("refuses --credits-per-tao without the mnemonic, or without --chain, naming what is missing", () => {
    expect(() => parseRouterCommand([...chain, "--credits-per-tao", "1"], {})).to.throw(
      TensorClawError,
      /--credits-per-tao: needs the treasury mnemonic in TENSORCLAW_TREASURY_MNEMONIC/,
    );
    expect(() =>
      parseRouterCommand(["--credits-per-tao", "1"], { TENSORCLAW_TREASURY_MNEMONIC: MNEMONIC }),
    ).to.throw(TensorClawError, /--credits-per-tao: needs --chain/);
    expect(() => parseRouterCommand([...chain, "--credits-per-tao", "0"], {})).to.throw(/at least/);
    expect(() => parseRouterCommand(["--deposit-confirmations", "-1"], {})).to.throw(/at least 0/);
  });

  it("reads the treasury mnemonic from the environment only", () => {
    const { config } = parseRouterCommand([], { TENSORCLAW_TREASURY_MNEMONIC: MNEMONIC });
    expect(config.treasuryMnemonic).to.equal(MNEMONIC);
    for (const argv of [["--treasury-mnemonic", MNEMONIC], [`--treasury-mnemonic=${MNEMONIC}`]]) {
      let err: unknown;
      try {
        parseRouterCommand(argv, {});
      } catch (e) {
        err = e;
      }
      expect((err as Error).message).to.match(
        /--treasury-mnemonic: set TENSORCLAW_TREASURY_MNEMONIC instead/,
      );
      expect((err as Error).message).to.not.contain("legal winner");
    }
  });
});
