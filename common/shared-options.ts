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

/** Default of `--redis-wait-timeout-ms`. */
export const DEFAULT_REDIS_WAIT_TIMEOUT_MS = 1000;
/**
 * Most `--redis-wait-timeout-ms` may be: a second below the Redis clients'
 * command timeout (5 s), so WAIT answers first.
 */
export const MAX_REDIS_WAIT_TIMEOUT_MS = 4000;

/**
 * `--redis-wait-replicas` and `--redis-wait-timeout-ms` of a program that
 * writes to Redis: `writes` names what waits for the replicas, `otherwise`
 * what happens to it when they miss it, `timeout` the end of the timeout's
 * description.
 */
export function redisWaitOptions(writes: string, otherwise: string, timeout: string) {
  return {
    redisWaitReplicas: {
      flag: "redis-wait-replicas",
      kind: "int",
      min: 0,
      max: 16,
      description: `Replicas of each Redis master that must have ${writes} before it counts as written (Redis WAIT); ${otherwise} (0: do not wait).`,
    },
    redisWaitTimeoutMs: {
      flag: "redis-wait-timeout-ms",
      kind: "int",
      min: 1,
      max: MAX_REDIS_WAIT_TIMEOUT_MS,
      description: `Longest wait for those replicas, ms, ${timeout}.`,
    },
  } as const satisfies Record<string, OptionSpec>;
}
