import { mnemonicGenerate } from "@polkadot/util-crypto";
import { type Hotkey, hotkeyFromMnemonic, initCrypto } from "../../common/identity.js";

/** A throwaway sr25519 hotkey for a test. */
export async function throwawayHotkey(): Promise<Hotkey> {
  await initCrypto();
  return hotkeyFromMnemonic(mnemonicGenerate());
}
