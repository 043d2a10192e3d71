import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { Keyring } from "@polkadot/keyring";
import { decodePair } from "@polkadot/keyring/pair/decode";
import type { KeyringPair } from "@polkadot/keyring/types";
import { hexToU8a, isHex } from "@polkadot/util";
import {
  cryptoWaitReady,
  decodeAddress,
  encodeAddress,
  mnemonicValidate,
  signatureVerify,
} from "@polkadot/util-crypto";
import {
  isReady as wasmReady,
  sr25519Sign as wasmSign,
  sr25519Verify as wasmVerify,
} from "@polkadot/wasm-crypto";
import { TensorClawError } from "./errors.js";

/** Bittensor's SS58 prefix (the generic Substrate prefix). */
export const SS58_PREFIX = 42;

/** A loaded sr25519 hotkey that can sign. */
export interface Hotkey {
  /** SS58 address, prefix 42. */
  readonly address: string;
  /** 32-byte public key. */
  readonly publicKey: Uint8Array;
  /** sr25519 signature (64 bytes) over `message`. */
  sign(message: Uint8Array): Uint8Array;
  /** The keyring pair, for `@polkadot/api` extrinsic signing. */
  readonly pair: KeyringPair;
}

/** Where to find a hotkey: a Bittensor wallet file or a mnemonic. */
export interface HotkeySource {
  /** Root of the wallets folder; default `~/.bittensor/wallets`. */
  readonly walletPath?: string | undefined;
  /** Wallet (coldkey) name. */
  readonly wallet?: string | undefined;
  /** Hotkey name inside the wallet. */
  readonly hotkey?: string | undefined;
  /** A BIP-39 mnemonic; wins over the wallet file when set. */
  readonly mnemonic?: string | undefined;
}

/** Default root of Bittensor wallets. */
export function defaultWalletPath(): string {
  return join(homedir(), ".bittensor", "wallets");
}

/** Path of a hotkey file: `<root>/<wallet>/hotkeys/<hotkey>`. */
export function hotkeyFilePath(walletPath: string, wallet: string, hotkey: string): string {
  return join(walletPath, wallet, "hotkeys", hotkey);
}

async function keyring(): Promise<Keyring> {
  await cryptoWaitReady();
  return new Keyring({ type: "sr25519", ss58Format: SS58_PREFIX });
}

/**
 * Signs with the WASM build of schnorrkel (@polkadot/wasm-crypto) when it
 * is loaded and the pair's secret can be read: ~0.13 ms per signature here
 * against ~0.8 ms for the keyring's pure-JS sr25519. The signatures are the
 * same scheme; each implementation verifies the other's.
 */
function wrap(pair: KeyringPair): Hotkey {
  let secret: Uint8Array | undefined;
  try {
    secret = decodePair(undefined, pair.encodePkcs8(), "none").secretKey;
  } catch {
    secret = undefined; // a locked pair: the keyring signs
  }
  const publicKey = pair.publicKey;
  return {
    address: pair.address,
    publicKey,
    sign: (message) =>
      secret !== undefined && wasmReady() ? wasmSign(publicKey, secret, message) : pair.sign(message),
    pair,
  };
}

/** A hotkey from a BIP-39 mnemonic (optionally with a `//derivation` path). */
export async function hotkeyFromMnemonic(mnemonic: string): Promise<Hotkey> {
  const kr = await keyring();
  const uri = mnemonic.trim();
  const slash = uri.indexOf("/");
  const phrase = (slash === -1 ? uri : uri.slice(0, slash)).trim();
  if (!mnemonicValidate(phrase)) {
    throw new TensorClawError("config_invalid", "the mnemonic is not a valid BIP-39 phrase");
  }
  try {
    return wrap(kr.addFromUri(uri));
  } catch (cause) {
    throw new TensorClawError("config_invalid", "the mnemonic is not a valid BIP-39 phrase", { cause });
  }
}

/** A hotkey from a 32-byte mini-secret seed (hex, with or without 0x). */
export async function hotkeyFromSeed(seedHex: string): Promise<Hotkey> {
  const hex = seedHex.startsWith("0x") ? seedHex : `0x${seedHex}`;
  if (!isHex(hex) || hex.length !== 66) {
    throw new TensorClawError("config_invalid", "secretSeed must be 32 bytes of hex");
  }
  const kr = await keyring();
  return wrap(kr.addFromSeed(hexToU8a(hex)));
}

/**
 * Parses the JSON text of a Bittensor hotkey file. Uses `secretPhrase` when
 * present, else `secretSeed`; when `ss58Address` is present it must match the
 * derived key (a mismatch means a corrupt or tampered file).
 */
export async function hotkeyFromWalletJson(text: string, origin: string): Promise<Hotkey> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (cause) {
    throw new TensorClawError("config_invalid", `hotkey file ${origin} is not valid JSON`, { cause });
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new TensorClawError("config_invalid", `hotkey file ${origin} must hold a JSON object`);
  }
  const rec = doc as Record<string, unknown>;
  const phrase = rec.secretPhrase;
  const seed = rec.secretSeed;
  const expected = rec.ss58Address;
  let key: Hotkey;
  if (typeof phrase === "string" && phrase.trim() !== "") {
    key = await hotkeyFromMnemonic(phrase);
  } else if (typeof seed === "string" && seed !== "") {
    key = await hotkeyFromSeed(seed);
  } else {
    throw new TensorClawError(
      "config_invalid",
      `hotkey file ${origin} has neither secretPhrase nor secretSeed`,
    );
  }
  if (expected !== undefined) {
    if (typeof expected !== "string" || !isValidHotkey(expected)) {
      throw new TensorClawError("config_invalid", `hotkey file ${origin} has a malformed ss58Address`);
    }
    if (encodeAddress(decodeAddress(expected), SS58_PREFIX) !== key.address) {
      throw new TensorClawError(
        "config_invalid",
        `hotkey file ${origin}: ss58Address ${expected} does not match its secret (derived ${key.address})`,
      );
    }
  }
  return key;
}

/** Loads a hotkey from a mnemonic or a wallet file, as the source says. */
export async function loadHotkey(source: HotkeySource): Promise<Hotkey> {
  if (source.mnemonic !== undefined && source.mnemonic.trim() !== "") {
    return hotkeyFromMnemonic(source.mnemonic);
  }
  if (source.wallet === undefined || source.hotkey === undefined) {
    throw new TensorClawError(
      "config_invalid",
      "no hotkey: pass --wallet and --hotkey (and --wallet-path if not ~/.bittensor/wallets) or set TENSORCLAW_MNEMONIC",
    );
  }
  const path = hotkeyFilePath(source.walletPath ?? defaultWalletPath(), source.wallet, source.hotkey);
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "does not exist" : `cannot be read (${code ?? "error"})`;
    throw new TensorClawError("config_invalid", `hotkey file ${path} ${why}`, { cause });
  }
  return hotkeyFromWalletJson(text, path);
}

/** True when `address` is an SS58 address with prefix 42 and a 32-byte key. */
export function isValidHotkey(address: string): boolean {
  try {
    const pk = decodeAddress(address, false, SS58_PREFIX);
    return pk.length === 32 && encodeAddress(pk, SS58_PREFIX) === address;
  } catch {
    return false;
  }
}

/**
 * Verifies an sr25519 signature by `address` over `message`. Signatures of
 * any other scheme, malformed addresses and wrong lengths are refused.
 * Requires `cryptoWaitReady()` to have resolved (see `initCrypto`).
 */
export function verifyHotkeySignature(message: Uint8Array, signature: Uint8Array, address: string): boolean {
  if (signature.length !== 64 || !isValidHotkey(address)) return false;
  try {
    // WASM schnorrkel: ~0.3 ms per verification here against ~2.2 ms for signatureVerify,
    // which also tries the other schemes. The keyring's path stays as the fallback.
    if (wasmReady()) return wasmVerify(signature, message, decodeAddress(address));
    const res = signatureVerify(message, signature, address);
    return res.isValid && res.crypto === "sr25519";
  } catch {
    return false;
  }
}

/** Initialises the WASM crypto once; call before verifying signatures. */
export async function initCrypto(): Promise<void> {
  await cryptoWaitReady();
}
