import { type OptionSpecs, parseCommand } from "../common/config.js";
import { TensorClawError } from "../common/errors.js";
import type { LogLevel } from "../common/logger.js";
import { LOG_LEVEL_OPTION, WALLET_OPTIONS } from "../common/shared-options.js";

/** Settings of `tensorclaw validator`. */
export interface ValidatorConfig {
  router: readonly string[];
  wallet: string | undefined;
  hotkey: string | undefined;
  walletPath: string | undefined;
  chain: string | undefined;
  netuid: number;
  probeIntervalS: number;
  probeConcurrency: number;
  weightsIntervalS: number;
  redisUrl: string | undefined;
  stateFile: string;
  dryRun: boolean;
  once: boolean;
  logLevel: LogLevel;
}

/** Defaults, in one place. */
export const VALIDATOR_DEFAULTS: ValidatorConfig = {
  router: [],
  wallet: undefined,
  hotkey: undefined,
  walletPath: undefined,
  chain: undefined,
  netuid: 92,
  probeIntervalS: 60,
  probeConcurrency: 64,
  weightsIntervalS: 1200,
  redisUrl: undefined,
  stateFile: ".tensorclaw/validator-state.json",
  dryRun: false,
  once: false,
  logLevel: "info",
};

/** Flags and environment variables of `tensorclaw validator`. */
export const VALIDATOR_OPTIONS: OptionSpecs<ValidatorConfig> = {
  router: {
    flag: "router",
    kind: "list",
    schemes: ["grpc", "grpcs"],
    description:
      "Router gRPC address grpc://host:port; several replicas sharing one ledger fail over in order.",
  },
  ...WALLET_OPTIONS,
  chain: {
    flag: "chain",
    kind: "url",
    schemes: ["ws", "wss"],
    description: "Subtensor endpoint ws://… or wss://….",
  },
  netuid: { flag: "netuid", kind: "int", min: 0, max: 65535, description: "Subnet id." },
  probeIntervalS: {
    flag: "probe-interval-s",
    kind: "int",
    min: 1,
    max: 86_400,
    description: "Seconds between probe rounds.",
  },
  probeConcurrency: {
    flag: "probe-concurrency",
    kind: "int",
    min: 1,
    max: 4096,
    description: "Most probes in flight at once.",
  },
  weightsIntervalS: {
    flag: "weights-interval-s",
    kind: "int",
    min: 1,
    max: 86_400,
    description: "Seconds between weight updates (the chain's rate limit also applies).",
  },
  redisUrl: {
    flag: "redis-url",
    kind: "url",
    env: "TENSORCLAW_VALIDATOR_REDIS_URL",
    schemes: ["redis", "rediss"],
    description: "Redis for probe history and pending commits (else --state-file).",
  },
  stateFile: {
    flag: "state-file",
    kind: "string",
    description: "Local state file (written atomically) when no Redis.",
  },
  dryRun: {
    flag: "dry-run",
    kind: "bool",
    description: "Compute and print scores and weights; submit nothing.",
  },
  once: { flag: "once", kind: "bool", description: "Run one probe round and one scoring pass, then exit." },
  logLevel: LOG_LEVEL_OPTION,
};

/** Parses the validator's command line and environment. */
export function parseValidatorCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
) {
  const parsed = parseCommand(VALIDATOR_OPTIONS, VALIDATOR_DEFAULTS, argv, env);
  if (
    !parsed.help &&
    !parsed.config.dryRun &&
    parsed.config.chain === undefined &&
    parsed.positionals.length === 0
  ) {
    throw new TensorClawError(
      "config_invalid",
      "invalid setting --chain: required unless --dry-run (weights are written to the chain)",
    );
  }
  return parsed;
}
