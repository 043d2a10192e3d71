import type { OptionSpec } from "./config.js";

/**
 * Log levels accepted by `--log-level` (pino's). Kept here rather than beside
 * the logger so that reading a config does not load pino.
 */
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The `--log-level` setting every program shares. */
export const LOG_LEVEL_OPTION: OptionSpec = {
  flag: "log-level",
  kind: "enum",
  choices: LOG_LEVELS,
  description: "Log verbosity (JSON lines on stderr).",
};

/** Settings that select a hotkey from a Bittensor wallet. */
export const WALLET_OPTIONS = {
  wallet: { flag: "wallet", kind: "string", description: "Bittensor wallet (coldkey) name." },
  hotkey: { flag: "hotkey", kind: "string", description: "Hotkey name inside the wallet." },
  walletPath: {
    flag: "wallet-path",
    kind: "string",
    description:
      "Root folder of wallets (default ~/.bittensor/wallets). TENSORCLAW_MNEMONIC wins over the wallet.",
  },
} as const satisfies Record<string, OptionSpec>;
