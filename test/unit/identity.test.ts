import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { u8aToHex } from "@polkadot/util";
import { mnemonicGenerate, mnemonicToMiniSecret, signatureVerify } from "@polkadot/util-crypto";
import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import {
  hotkeyFromMnemonic,
  initCrypto,
  isValidHotkey,
  loadHotkey,
  verifyHotkeySignature,
} from "../../common/identity.js";

async function expectConfigError(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    expect((err as TensorClawError).code).to.equal("config_invalid");
    expect((err as Error).message).to.match(pattern);
    return;
  }
  expect.fail("expected a config_invalid error");
}

describe("identity", () => {
  let root: string;
  let mnemonic: string;
  let address: string;
  before(async () => {
    await initCrypto();
    mnemonic = mnemonicGenerate();
    address = (await hotkeyFromMnemonic(mnemonic)).address;
  });
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), "tc-wallet-"));
    await mkdir(join(root, "w1", "hotkeys"), { recursive: true });
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  const write = (doc: unknown) => writeFile(join(root, "w1", "hotkeys", "h1"), JSON.stringify(doc));
  const load = () => loadHotkey({ walletPath: root, wallet: "w1", hotkey: "h1" });

  it("loads a wallet file by its secretPhrase and checks ss58Address", async () => {
    await write({ secretPhrase: mnemonic, ss58Address: address });
    const key = await load();
    expect(key.address).to.equal(address);
    const msg = new TextEncoder().encode("hi");
    expect(verifyHotkeySignature(msg, key.sign(msg), address)).to.equal(true);
  });

  it("loads a wallet file that only has secretSeed", async () => {
    await write({ secretSeed: u8aToHex(mnemonicToMiniSecret(mnemonic)) });
    expect((await load()).address).to.equal(address);
  });

  it("refuses a file whose ss58Address does not match its secret", async () => {
    const other = (await hotkeyFromMnemonic(mnemonicGenerate())).address;
    await write({ secretPhrase: mnemonic, ss58Address: other });
    await expectConfigError(load(), /does not match its secret/);
  });

  it("refuses malformed files with a message naming the file", async () => {
    await writeFile(join(root, "w1", "hotkeys", "h1"), "{not json");
    await expectConfigError(load(), /h1 is not valid JSON/);
    await write({ ss58Address: address });
    await expectConfigError(load(), /neither secretPhrase nor secretSeed/);
    await write({ secretSeed: "0x1234" });
    await expectConfigError(load(), /secretSeed must be 32 bytes/);
    await write([1, 2]);
    await expectConfigError(load(), /must hold a JSON object/);
  });

  it("reports a missing file by its path", async () => {
    await expectConfigError(
      loadHotkey({ walletPath: root, wallet: "w1", hotkey: "nope" }),
      new RegExp(
        `${join(root, "w1", "hotkeys", "nope").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} does not exist`,
      ),
    );
  });

  it("prefers a mnemonic over the wallet and refuses an invalid one", async () => {
    const key = await loadHotkey({ mnemonic, wallet: "absent", hotkey: "absent", walletPath: root });
    expect(key.address).to.equal(address);
    await expectConfigError(loadHotkey({ mnemonic: "not a real phrase" }), /not a valid BIP-39/);
  });

  it("says how to provide a hotkey when none is given", async () => {
    await expectConfigError(loadHotkey({}), /--wallet and --hotkey .* TENSORCLAW_MNEMONIC/);
  });

  it("signs and verifies sr25519 interchangeably with the keyring's own implementation", async () => {
    const key = await hotkeyFromMnemonic(`${mnemonic}//tensorclaw`);
    const message = new TextEncoder().encode("tensorclaw probe payload");
    const ours = key.sign(message);
    // Our (WASM) signature verifies with the keyring's verifier, the keyring's with ours.
    expect(signatureVerify(message, ours, key.address)).to.include({ isValid: true, crypto: "sr25519" });
    expect(verifyHotkeySignature(message, key.pair.sign(message), key.address)).to.equal(true);
    expect(verifyHotkeySignature(message, ours, key.address)).to.equal(true);
    // A flipped bit, another message or another signer never verifies.
    const forged = Uint8Array.from(ours);
    forged[10] = (forged[10] ?? 0) ^ 1;
    expect(verifyHotkeySignature(message, forged, key.address)).to.equal(false);
    expect(verifyHotkeySignature(new TextEncoder().encode("other"), ours, key.address)).to.equal(false);
    expect(verifyHotkeySignature(message, ours, address)).to.equal(false);
  });

  it("validates SS58 hotkeys with prefix 42", () => {
    expect(isValidHotkey(address)).to.equal(true);
    // Another last character breaks the checksum (one that differs from the address's own).
    const other = address.endsWith("x") ? "y" : "x";
    expect(isValidHotkey(`${address.slice(0, -1)}${other}`)).to.equal(false);
    // The same key under the Polkadot prefix (0) is not a Bittensor hotkey.
    expect(isValidHotkey("15oF4uVJwmo4TdGW7VfQxNLavjCXviqxT9S1MgbjMNHr6Sp5")).to.equal(false);
  });
});
