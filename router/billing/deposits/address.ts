import { Keyring } from "@polkadot/keyring";
import type { KeyringPair } from "@polkadot/keyring/types";
import { cryptoWaitReady, mnemonicValidate } from "@polkadot/util-crypto";
import { TensorClawError } from "../../../common/errors.js";
import { SS58_PREFIX } from "../../../common/identity.js";
import { TREASURY_MNEMONIC_ENV } from "./options.js";

/**
 * Per-key TAO deposit addresses. Each API key gets its own sr25519 account,
 * derived from the operator's treasury mnemonic along a path made only of
 * HARD junctions:
 *
 *     <treasury mnemonic>//tensorclaw//deposit//<key id>
 *
 * Hard junctions mix the parent's secret into the child, so knowing the
 * treasury's public key (or any deposit address) reveals nothing about the
 * other addresses, and each address's secret key can be re-derived by the
 * operator alone (the README's "TAO deposits" says how to sweep). The path
 * is the polkadot.js / Substrate secret URI syntax, so the same keys come
 * out of `@polkadot/keyring`, subkey, or Bittensor's `Keypair.create_from_uri`.
 *
 * This module loads no chain client: `tensorclaw keys deposit-address`
 * uses it with the keyring alone.
 */

/** Hard-derivation path of every deposit address, before the key id. */
export const DEPOSIT_PATH_PREFIX = "//tensorclaw//deposit";

/** What a key id must look like to be a path junction (ids are `key_<16 hex>`). */
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The derivation path (after the mnemonic) of one key's deposit address. */
export function depositPath(keyId: string): string {
  if (!KEY_ID.test(keyId)) {
    throw new TensorClawError("invalid_request", `not an API key id: ${JSON.stringify(keyId)}`);
  }
  return `${DEPOSIT_PATH_PREFIX}//${keyId}`;
}

/**
 * Checks a treasury mnemonic without ever putting it in a message: a
 * `config_invalid` error naming the variable when it is not a BIP-39 phrase.
 * A derivation path or password is refused too: the deposit path is fixed.
 */
export function checkTreasuryMnemonic(mnemonic: string): string {
  const phrase = mnemonic.trim().split(/\s+/).join(" ");
  if (!mnemonicValidate(phrase)) {
    throw new TensorClawError(
      "config_invalid",
      `invalid setting ${TREASURY_MNEMONIC_ENV}: not a valid BIP-39 mnemonic (12 to 24 words, no derivation path)`,
    );
  }
  return phrase;
}

/** Derives (and remembers) each key's deposit address from the treasury root. */
export class DepositAddresses {
  readonly #root: KeyringPair;
  readonly #byKey = new Map<string, string>();

  private constructor(root: KeyringPair) {
    this.#root = root;
  }

  /**
   * The treasury root from its mnemonic (see {@link checkTreasuryMnemonic}).
   * Only the derived root pair is kept, not the phrase.
   */
  static async fromMnemonic(mnemonic: string): Promise<DepositAddresses> {
    const phrase = checkTreasuryMnemonic(mnemonic);
    await cryptoWaitReady();
    const keyring = new Keyring({ type: "sr25519", ss58Format: SS58_PREFIX });
    return new DepositAddresses(keyring.createFromUri(phrase));
  }

  /** The treasury root's own address (not a deposit address; for the operator's records). */
  get treasuryAddress(): string {
    return this.#root.address;
  }

  /** The SS58 (prefix 42) deposit address of a key; the same for the same mnemonic and id, always. */
  address(keyId: string): string {
    let a = this.#byKey.get(keyId);
    if (a === undefined) {
      a = this.#root.derive(depositPath(keyId)).address;
      this.#byKey.set(keyId, a);
    }
    return a;
  }
}
