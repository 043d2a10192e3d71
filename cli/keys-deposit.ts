import type { CommandIO } from "../common/command.js";
import type { ApiKeys } from "../router/api/keys.js";
import { TREASURY_MNEMONIC_ENV } from "../router/billing/deposits/options.js";

/**
 * `tensorclaw keys deposit-address <id>`: prints the key's TAO deposit
 * address, derived from the treasury mnemonic in the environment (never a
 * flag, so it stays out of shell history and process lists). Only an
 * existing, unrevoked key gets one: the router credits addresses of keys it
 * knows. Exit 1 for an unknown or revoked key, 2 without a usable mnemonic.
 */
export async function printDepositAddress(
  keys: ApiKeys,
  keyId: string,
  json: boolean,
  io: CommandIO,
): Promise<number> {
  const mnemonic = io.env[TREASURY_MNEMONIC_ENV] ?? "";
  if (mnemonic.trim() === "") {
    io.stderr(
      `tensorclaw keys: deposit-address needs the treasury mnemonic in ${TREASURY_MNEMONIC_ENV} (environment only)\n`,
    );
    return 2;
  }
  const record = (await keys.list()).find((r) => r.id === keyId);
  if (record === undefined || record.revokedAtMs !== null) {
    io.stderr(
      `tensorclaw keys: no ${record === undefined ? "key" : "active key"} with id ${JSON.stringify(keyId)}\n`,
    );
    return 1;
  }
  // Loaded here: the other verbs and `--help` do without the keyring.
  const { DepositAddresses, depositPath } = await import("../router/billing/deposits/address.js");
  let addresses: Awaited<ReturnType<typeof DepositAddresses.fromMnemonic>>;
  try {
    addresses = await DepositAddresses.fromMnemonic(mnemonic);
  } catch (err) {
    // The message names the variable, never its value.
    io.stderr(`tensorclaw keys: ${err instanceof Error ? err.message : String(err)}\n`);
    return 2;
  }
  const address = addresses.address(keyId);
  if (json) {
    io.stdout(`${JSON.stringify({ id: keyId, address, path: depositPath(keyId) })}\n`);
  } else {
    io.stdout(`${address}\n`);
    io.stderr(`TAO sent to this address credits ${keyId} (${record.name}) once the router sees it final.\n`);
  }
  return 0;
}
