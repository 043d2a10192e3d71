import { type OptionSpecs, parseCommand } from "../common/config.js";
import { TensorClawError } from "../common/errors.js";
import type { LogLevel } from "../common/logger.js";
import { LOG_LEVEL_OPTION, WALLET_OPTIONS } from "../common/shared-options.js";

/** How the miner reaches its routers. */
export type TransportChoice = "auto" | "grpc" | "ws";

/** Settings of `tensorclaw miner`. */
export interface MinerConfig {
  router: readonly string[];
  backend: string;
  backendKey: string | undefined;
  models: readonly string[];
  maxConcurrency: number;
  contextLength: number;
  transport: TransportChoice;
  wallet: string | undefined;
  hotkey: string | undefined;
  walletPath: string | undefined;
  logLevel: LogLevel;
}

/** Defaults, in one place. */
export const MINER_DEFAULTS: MinerConfig = {
  router: [],
  backend: "demo",
  backendKey: undefined,
  models: [],
  maxConcurrency: 8,
  contextLength: 0,
  transport: "auto",
  wallet: undefined,
  hotkey: undefined,
  walletPath: undefined,
  logLevel: "info",
};

/** Flags and environment variables of `tensorclaw miner`. */
export const MINER_OPTIONS: OptionSpecs<MinerConfig> = {
  router: {
    flag: "router",
    kind: "list",
    schemes: ["grpc", "grpcs", "ws", "wss"],
    description: "Router to connect to: grpc://host:port, grpcs://…, ws://host:port/v1/tunnel or wss://….",
  },
  backend: {
    flag: "backend",
    kind: "string",
    description: 'Base URL of an OpenAI-compatible server (…/v1), or "demo" for the built-in demo model.',
  },
  backendKey: {
    flag: "backend-key",
    kind: "string",
    secret: true,
    description: "Bearer key for the backend.",
  },
  models: {
    flag: "models",
    kind: "list",
    description: "Models to offer (default: discovered from the backend's /v1/models).",
  },
  maxConcurrency: {
    flag: "max-concurrency",
    kind: "int",
    min: 1,
    max: 10_000,
    description: "Most requests per model in flight at once, per tunnel.",
  },
  contextLength: {
    flag: "context-length",
    kind: "int",
    min: 0,
    max: 10_000_000,
    description: "Context window to advertise, in tokens (0: unknown).",
  },
  transport: {
    flag: "transport",
    kind: "enum",
    choices: ["auto", "grpc", "ws"],
    description: "auto tries gRPC first and falls back to WebSocket.",
  },
  ...WALLET_OPTIONS,
  logLevel: LOG_LEVEL_OPTION,
};

/** Parses the miner's command line and environment. */
export function parseMinerCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
) {
  const parsed = parseCommand(MINER_OPTIONS, MINER_DEFAULTS, argv, env);
  const backend = parsed.config.backend;
  if (backend !== "demo") {
    let ok = false;
    try {
      const u = new URL(backend);
      ok = u.protocol === "http:" || u.protocol === "https:";
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new TensorClawError(
        "config_invalid",
        `invalid setting --backend: expected an http(s) URL or "demo", got ${JSON.stringify(backend)}`,
      );
    }
  }
  return parsed;
}
