import { type OptionSpecs, parseCommand } from "../common/config.js";
import { TensorClawError } from "../common/errors.js";
import { LOG_LEVEL_OPTION, type LogLevel, WALLET_OPTIONS } from "../common/shared-options.js";
import { planRouters } from "./tunnel/endpoints.js";

/** How the miner reaches its routers. */
export type TransportChoice = "auto" | "grpc" | "ws";

/** Settings of `tensorclaw miner`. */
export interface MinerConfig {
  router: readonly string[];
  backend: string;
  backendKey: string | undefined;
  models: readonly string[];
  /** Models that serve embeddings only (`--embedding-models`). */
  embeddingModels: readonly string[];
  /** Models that also serve legacy completions (`--completion-models`; `*`: all but embedding ones). */
  completionModels: readonly string[];
  /** The most requests per model advertised per tunnel: the learned limit's ceiling, or the limit itself when fixed. */
  maxConcurrency: number;
  /** Advertise `maxConcurrency` as is instead of learning each model's limit from the backend. */
  fixedConcurrency: boolean;
  contextLength: number;
  transport: TransportChoice;
  wallet: string | undefined;
  hotkey: string | undefined;
  walletPath: string | undefined;
  /** BIP-39 mnemonic of the hotkey, from TENSORCLAW_MNEMONIC only; never logged. */
  mnemonic: string | undefined;
  /** Time between backend health checks (model discovery, up/down). */
  healthIntervalMs: number;
  /** How long a dial may take to reach Accept before the next transport is tried. */
  connectTimeoutMs: number;
  /** PEM file of an extra CA trusted for grpcs:// and wss:// routers. */
  tlsCa: string | undefined;
  /** Folder for the miner's state: the router id pinned per router address. */
  dataDir: string;
  logLevel: LogLevel;
}

/** Defaults, in one place. */
export const MINER_DEFAULTS: MinerConfig = {
  router: [],
  backend: "demo",
  backendKey: undefined,
  models: [],
  embeddingModels: [],
  completionModels: [],
  maxConcurrency: 256,
  fixedConcurrency: false,
  contextLength: 0,
  transport: "auto",
  wallet: undefined,
  hotkey: undefined,
  walletPath: undefined,
  mnemonic: undefined,
  healthIntervalMs: 10_000,
  connectTimeoutMs: 10_000,
  tlsCa: undefined,
  dataDir: ".tensorclaw",
  logLevel: "info",
};

/** Flags and environment variables of `tensorclaw miner`. */
export const MINER_OPTIONS: OptionSpecs<MinerConfig> = {
  router: {
    flag: "router",
    kind: "list",
    schemes: ["grpc", "grpcs", "ws", "wss"],
    description:
      "Router to connect to: grpc://host:port, grpcs://…, ws://host:port/v1/tunnel or wss://…; " +
      "?id=<router-id> pins the router id to sign hellos for (else the first one seen is pinned).",
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
  embeddingModels: {
    flag: "embedding-models",
    kind: "list",
    description:
      "Models that serve embeddings (POST /v1/embeddings) and not chat; every other model is offered for chat only.",
  },
  completionModels: {
    flag: "completion-models",
    kind: "list",
    description:
      "Models that also serve legacy text completions (POST /v1/completions); `*` for every chat model.",
  },
  maxConcurrency: {
    flag: "max-concurrency",
    kind: "int",
    min: 1,
    max: 10_000,
    description:
      "Most requests per model in flight at once, per tunnel: the ceiling of the concurrency the miner " +
      "learns from its backend (starting at 8), or, with --fixed-concurrency, the concurrency itself.",
  },
  fixedConcurrency: {
    flag: "fixed-concurrency",
    kind: "bool",
    description:
      "Advertise --max-concurrency as is instead of learning each model's concurrency from how fast the " +
      "backend answers under load.",
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
  mnemonic: {
    flag: "mnemonic",
    kind: "string",
    env: "TENSORCLAW_MNEMONIC",
    secret: true,
    description: "Hotkey mnemonic; environment only (the flag form is refused so it never shows in ps).",
  },
  healthIntervalMs: {
    flag: "health-interval-ms",
    kind: "int",
    min: 100,
    max: 3_600_000,
    description: "Time between backend health checks; a failing backend offers no models until it recovers.",
  },
  connectTimeoutMs: {
    flag: "connect-timeout-ms",
    kind: "int",
    min: 100,
    max: 600_000,
    description:
      "How long a tunnel may take from dial to Accept before auto falls back to the next transport.",
  },
  tlsCa: {
    flag: "tls-ca",
    kind: "string",
    description:
      "PEM file of an extra CA to trust for grpcs:// and wss:// routers (system roots stay trusted).",
  },
  dataDir: {
    flag: "data-dir",
    kind: "string",
    description:
      "Folder for the miner's state: miner-router-pins.json, the router id first seen at each router address.",
  },
  logLevel: LOG_LEVEL_OPTION,
};

/** Parses the miner's command line and environment. */
export function parseMinerCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
) {
  if (argv.some((a) => a === "--mnemonic" || a.startsWith("--mnemonic="))) {
    throw new TensorClawError(
      "config_invalid",
      "invalid setting --mnemonic: set TENSORCLAW_MNEMONIC instead (a flag is visible to every local user)",
    );
  }
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
  if (!parsed.help) {
    if (parsed.config.router.length === 0) {
      throw new TensorClawError(
        "config_invalid",
        "invalid setting --router: give at least one router to connect to",
      );
    }
    // Fails with config_invalid naming --router when the URLs cannot serve --transport.
    planRouters(parsed.config.router, parsed.config.transport);
  }
  return parsed;
}
