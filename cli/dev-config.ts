import { type OptionSpecs, parseCommand } from "../common/config.js";
import { LOG_LEVEL_OPTION, type LogLevel } from "../common/shared-options.js";
import { SIMULATE_CHAIN_CHOICES } from "../validator/simulated-chain.js";

/** Settings of `tensorclaw dev`. */
export interface DevConfig {
  miners: number;
  backend: string;
  httpPort: number;
  grpcPort: number;
  probeIntervalS: number;
  /** The dry-run validator's simulated chain (its `--simulate-chain`). */
  simulateChain: (typeof SIMULATE_CHAIN_CHOICES)[number];
  dataDir: string;
  logLevel: LogLevel;
}

/** Defaults, in one place. */
export const DEV_DEFAULTS: DevConfig = {
  miners: 2,
  backend: "demo",
  httpPort: 8080,
  grpcPort: 50051,
  probeIntervalS: 15,
  // The dev network shows the weights a real subnet (commit-reveal off) would get.
  simulateChain: "set-weights",
  dataDir: ".tensorclaw/dev",
  logLevel: "warn",
};

/** Flags and environment variables of `tensorclaw dev`. */
export const DEV_OPTIONS: OptionSpecs<DevConfig> = {
  miners: {
    flag: "miners",
    kind: "int",
    min: 1,
    max: 64,
    description: "How many miners to start (one uses WSS).",
  },
  backend: {
    flag: "backend",
    kind: "string",
    env: "TENSORCLAW_DEV_BACKEND",
    description: 'Backend for the miners: "demo" or the URL of an OpenAI-compatible server (Ollama, vLLM…).',
  },
  httpPort: { flag: "http-port", kind: "int", min: 0, max: 65535, description: "Router HTTP port." },
  grpcPort: { flag: "grpc-port", kind: "int", min: 0, max: 65535, description: "Router gRPC port." },
  probeIntervalS: {
    flag: "probe-interval-s",
    kind: "int",
    min: 1,
    max: 3600,
    description: "Seconds between the dry-run validator's probe rounds.",
  },
  simulateChain: {
    flag: "simulate-chain",
    kind: "enum",
    choices: SIMULATE_CHAIN_CHOICES,
    description:
      "The dry-run validator's simulated subnet: commit-reveal off (set-weights), on (commit-reveal: timelocked commits), or none (off).",
  },
  dataDir: {
    flag: "data-dir",
    kind: "string",
    description: "Folder for the network's identities, API keys, embedded ledger and spool.",
  },
  logLevel: LOG_LEVEL_OPTION,
};

/** Parses `tensorclaw dev`'s command line and environment. */
export function parseDevCommand(argv: readonly string[], env: Readonly<Record<string, string | undefined>>) {
  return parseCommand(DEV_OPTIONS, DEV_DEFAULTS, argv, env);
}
