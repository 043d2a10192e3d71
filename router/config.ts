import { type OptionSpecs, parseCommand } from "../common/config.js";
import { TensorClawError } from "../common/errors.js";
import { DEFAULT_ROUTER_ID, isValidRouterId } from "../common/router-id.js";
import {
  DEFAULT_REDIS_WAIT_TIMEOUT_MS,
  LOG_LEVEL_OPTION,
  type LogLevel,
  redisWaitOptions,
} from "../common/shared-options.js";
import { DEFAULT_MAX_QUEUE, DEFAULT_QUEUE_TIMEOUT_MS } from "./api/capacity-queue.js";
import { DEFAULT_CONNECTIONS_PER_ADDRESS } from "./api/connection-limits.js";
import { type CorsOrigins, parseCorsOrigins } from "./api/cors.js";
import { DEFAULT_MAX_BODY_BYTES } from "./api/http.js";
import { DEFAULT_MAX_CONCURRENT_PER_KEY } from "./api/key-concurrency.js";
import { GENERATION_TTL_MS, MIN_GENERATION_RETENTION_MS } from "./billing/billing.js";
import { DEPOSIT_DEFAULTS, TREASURY_MNEMONIC_ENV } from "./billing/deposits/options.js";
import { DEFAULT_LEDGER_OPTIONS } from "./ledger/ledger.js";
import { DEFAULT_TUNNEL_LIMITS, DEFAULT_TUNNEL_TIMINGS } from "./tunnel/options.js";

/** Shortest salt accepted from `--user-salt`. */
export const MIN_USER_SALT_LENGTH = 16;

/** Settings of `tensorclaw router`. */
export interface RouterConfig {
  host: string;
  httpPort: number;
  grpcPort: number;
  redisUrl: string | undefined;
  /** Replicas of each master that must acknowledge usage and charges before they count as written; 0: none (Redis WAIT). */
  redisWaitReplicas: number;
  /** Longest wait for them, ms. */
  redisWaitTimeoutMs: number;
  noAuth: boolean;
  routerId: string;
  chain: string | undefined;
  netuid: number;
  validators: readonly string[];
  minersAllow: readonly string[];
  dataDir: string;
  publicDirectory: boolean;
  openCatalogue: boolean;
  countFreeTraffic: boolean;
  /** `--no-console`: no web console at `/` and none of its endpoints (router/console). */
  noConsole: boolean;
  readyWithoutMiners: boolean;
  bucketS: number;
  retentionS: number;
  generationRetentionS: number;
  maxBodyBytes: number;
  drainGraceMs: number;
  maxTunnelsPerHotkey: number;
  maxConcurrentPerKey: number;
  /** Requests waiting for a busy model's free slot, all models together; 0: none wait (503 at once). */
  maxQueue: number;
  /** Longest wait for a free slot, ms (within the request's own deadline); 0: none wait. */
  queueTimeoutMs: number;
  /** HTTP connections held in all; 0: automatic (see connection-limits.ts). */
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxPendingHandshakesPerAddress: number;
  helloChecksPerSecond: number;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  userSalt: string | undefined;
  metricsToken: string | undefined;
  /** `--cors-origins` as given ("*" or a comma-separated list); undefined: CORS off. See corsOrigins(). */
  corsOrigins: string | undefined;
  /** USD credits per TAO deposited; with --chain and the treasury mnemonic, deposits are credited. */
  creditsPerTao: number | undefined;
  depositConfirmations: number;
  /** Mnemonic the deposit addresses derive from; environment only, never logged. */
  treasuryMnemonic: string | undefined;
  logLevel: LogLevel;
}

/** Defaults, in one place. */
export const ROUTER_DEFAULTS: RouterConfig = {
  host: "127.0.0.1",
  httpPort: 8080,
  grpcPort: 50051,
  redisUrl: undefined,
  redisWaitReplicas: 0,
  redisWaitTimeoutMs: DEFAULT_REDIS_WAIT_TIMEOUT_MS,
  noAuth: false,
  routerId: DEFAULT_ROUTER_ID,
  chain: undefined,
  netuid: 92,
  validators: [],
  minersAllow: [],
  dataDir: ".tensorclaw",
  publicDirectory: false,
  openCatalogue: false,
  countFreeTraffic: false,
  noConsole: false,
  readyWithoutMiners: false,
  bucketS: DEFAULT_LEDGER_OPTIONS.bucketMs / 1000,
  retentionS: DEFAULT_LEDGER_OPTIONS.retentionMs / 1000,
  generationRetentionS: GENERATION_TTL_MS / 1000,
  maxBodyBytes: DEFAULT_MAX_BODY_BYTES,
  drainGraceMs: DEFAULT_TUNNEL_TIMINGS.drainGraceMs,
  maxTunnelsPerHotkey: DEFAULT_TUNNEL_LIMITS.maxTunnelsPerHotkey,
  maxConcurrentPerKey: DEFAULT_MAX_CONCURRENT_PER_KEY,
  maxQueue: DEFAULT_MAX_QUEUE,
  queueTimeoutMs: DEFAULT_QUEUE_TIMEOUT_MS,
  maxConnections: 0,
  maxConnectionsPerAddress: DEFAULT_CONNECTIONS_PER_ADDRESS,
  maxPendingHandshakesPerAddress: DEFAULT_TUNNEL_LIMITS.maxPendingHandshakesPerAddress,
  helloChecksPerSecond: DEFAULT_TUNNEL_LIMITS.helloChecksPerSecond,
  tlsCert: undefined,
  tlsKey: undefined,
  userSalt: undefined,
  metricsToken: undefined,
  corsOrigins: undefined,
  creditsPerTao: undefined,
  depositConfirmations: DEPOSIT_DEFAULTS.confirmations,
  treasuryMnemonic: undefined,
  logLevel: "info",
};

/** Flags and environment variables of `tensorclaw router`. */
export const ROUTER_OPTIONS: OptionSpecs<RouterConfig> = {
  host: { flag: "host", kind: "string", description: "Address to listen on (both ports)." },
  httpPort: {
    flag: "http-port",
    kind: "int",
    min: 0,
    max: 65535,
    description: "HTTP port: OpenAI API, /metrics, WebSocket tunnel at /v1/tunnel.",
  },
  grpcPort: {
    flag: "grpc-port",
    kind: "int",
    min: 0,
    max: 65535,
    description: "gRPC port: tunnel, Probe, UsageReport, MinerDirectory, health, reflection.",
  },
  redisUrl: {
    flag: "redis-url",
    kind: "redis-url",
    env: "REDIS_URL",
    description:
      "Redis (redis://host:port) or Redis Cluster (redis+cluster://h1:p1,h2:p2) for the usage ledger and API keys; without it the embedded in-process ledger is used.",
  },
  ...redisWaitOptions(
    "a batch of usage and settled charges (and a deposit's credit)",
    "until then it stays in the spool and is written again",
    "before the batch goes to the spool",
  ),
  noAuth: {
    flag: "no-auth",
    kind: "bool",
    description: "Serve the API without API keys (local experiments only).",
  },
  routerId: {
    flag: "router-id",
    kind: "string",
    description:
      "This router's unique id, signed by miners in their hello and by validators in their calls (1-128 visible ASCII characters); set one per router.",
  },
  chain: {
    flag: "chain",
    kind: "url",
    schemes: ["ws", "wss"],
    description: "Subtensor endpoint; admits only registered miners and permitted validators.",
  },
  netuid: { flag: "netuid", kind: "int", min: 0, max: 65535, description: "Subnet id on the chain." },
  validators: {
    flag: "validators",
    kind: "list",
    description: "Validator hotkeys allowed to call Probe/Usage/Directory when no chain is given.",
  },
  minersAllow: {
    flag: "miners-allow",
    kind: "list",
    description: "Miner hotkeys allowed to connect when no chain is given (empty: any signed hotkey).",
  },
  dataDir: {
    flag: "data-dir",
    kind: "string",
    description: "Folder for the embedded ledger and key store (no Redis) and the usage spool (Redis down).",
  },
  publicDirectory: {
    flag: "public-directory",
    kind: "bool",
    description: "Serve MinerDirectory without a validator signature (session list only; for local use).",
  },
  openCatalogue: {
    flag: "open-catalogue",
    kind: "bool",
    description:
      "Route model ids outside the catalogue too, at tier 1 (dev networks); without it only catalogue models are routed.",
  },
  countFreeTraffic: {
    flag: "count-free-traffic",
    kind: "bool",
    description:
      "Dev setting: free traffic (unmetered keys, free models) earns business points like paid traffic; " +
      "without it only paid tokens earn. GetUsage says which.",
  },
  noConsole: {
    flag: "no-console",
    kind: "bool",
    description:
      "Serve no web console: no page at / and none of its endpoints (/api/v1/network, " +
      "/api/v1/models/<id>/stats, /api/v1/miners/<hotkey>, /api/v1/key/activity).",
  },
  readyWithoutMiners: {
    flag: "ready-without-miners",
    kind: "bool",
    description:
      "/readyz says ready with no live miner (a router that should take traffic before miners arrive); " +
      "without it, no live miner means not ready.",
  },
  bucketS: {
    flag: "bucket-s",
    kind: "int",
    min: 1,
    max: 3600,
    description: "Ledger bucket length in seconds.",
  },
  retentionS: {
    flag: "retention-s",
    kind: "int",
    min: 60,
    max: 30 * 86_400,
    description: "How long the ledger keeps usage, in seconds.",
  },
  generationRetentionS: {
    flag: "generation-retention-s",
    kind: "int",
    min: MIN_GENERATION_RETENTION_MS / 1000,
    max: GENERATION_TTL_MS / 1000,
    description:
      "How long each API request's generation record is kept in the billing store, in seconds (one hour to 30 days); " +
      "about 300 bytes of Redis per request for that long.",
  },
  maxBodyBytes: {
    flag: "max-body-bytes",
    kind: "int",
    min: 1024,
    max: 64 * 1024 * 1024,
    description: "Largest accepted HTTP request body.",
  },
  drainGraceMs: {
    flag: "drain-grace-ms",
    kind: "int",
    min: 0,
    max: 600_000,
    description: "On shutdown, how long in-flight requests may finish after drain.",
  },
  maxConnections: {
    flag: "max-connections",
    kind: "int",
    min: 0,
    max: 10_000_000,
    description:
      "HTTP connections held in all (idle keep-alive ones are closed to make room); 0: 8192, or 3/4 of the open-files limit if lower.",
  },
  maxConnectionsPerAddress: {
    flag: "max-connections-per-address",
    kind: "int",
    min: 1,
    max: 10_000_000,
    description: "HTTP connections one remote address may hold (its idle ones are closed to make room).",
  },
  maxConcurrentPerKey: {
    flag: "max-concurrent-per-key",
    kind: "int",
    min: 0,
    max: 1_000_000,
    description: "Requests one API key may have in progress on this router (0: no cap); more get 429.",
  },
  maxQueue: {
    flag: "max-queue",
    kind: "int",
    min: 0,
    max: 1_000_000,
    description:
      "Requests that may wait for a free slot while every miner of their model is busy, all models together; more get 503 at once (0: none wait).",
  },
  queueTimeoutMs: {
    flag: "queue-timeout-ms",
    kind: "int",
    min: 0,
    max: 600_000,
    description:
      "Longest a request waits for a busy model's free slot (never past its own deadline) before its 503 (0: none wait).",
  },
  maxTunnelsPerHotkey: {
    flag: "max-tunnels-per-hotkey",
    kind: "int",
    min: 1,
    max: 1_000,
    description: "Live tunnels one miner hotkey may hold on this router; more hellos are refused.",
  },
  maxPendingHandshakesPerAddress: {
    flag: "max-pending-handshakes-per-address",
    kind: "int",
    min: 1,
    max: 100_000,
    description: "Tunnel handshakes one remote address may have in progress at once.",
  },
  helloChecksPerSecond: {
    flag: "hello-checks-per-second",
    kind: "int",
    min: 1,
    max: 1_000_000,
    description: "Hello signature checks per second, all miners together (each costs ~0.7 ms of CPU).",
  },
  tlsCert: {
    flag: "tls-cert",
    kind: "string",
    description: "PEM certificate for TLS on both ports (grpcs/wss/https).",
  },
  tlsKey: { flag: "tls-key", kind: "string", description: "PEM private key for --tls-cert." },
  userSalt: {
    flag: "user-salt",
    kind: "string",
    secret: true,
    description:
      "Secret of the hash that replaces the `user` field (same on every replica, at least 16 characters). " +
      "Unset: shared through Redis (created once), else kept in --data-dir.",
  },
  corsOrigins: {
    flag: "cors-origins",
    kind: "string",
    description:
      "Web origins that may call the API from a browser: a comma-separated list (https://app.example) or *. " +
      "Unset: none (CORS off). * is refused with --no-auth.",
  },
  metricsToken: {
    flag: "metrics-token",
    kind: "string",
    secret: true,
    description:
      "Bearer token that /metrics asks for (Authorization: Bearer <token>). Unset: /metrics is open, " +
      "as on a private network.",
  },
  creditsPerTao: {
    flag: "credits-per-tao",
    kind: "number",
    min: 0.000001,
    max: 1_000_000,
    description:
      `USD credits per TAO sent to a key's deposit address. Needs --chain and ${TREASURY_MNEMONIC_ENV} ` +
      "(environment only) holding the treasury mnemonic the addresses derive from. Unset: no deposits.",
  },
  depositConfirmations: {
    flag: "deposit-confirmations",
    kind: "int",
    min: 0,
    max: 1000,
    description: "Blocks finalized on top of a deposit's block before it is credited.",
  },
  treasuryMnemonic: {
    flag: "treasury-mnemonic",
    kind: "string",
    env: TREASURY_MNEMONIC_ENV,
    secret: true,
    description:
      "Treasury mnemonic the per-key deposit addresses derive from; environment only (the flag form is refused).",
  },
  logLevel: LOG_LEVEL_OPTION,
};

/**
 * The origins of `--cors-origins`, checked: a malformed list, or `*` with
 * `--no-auth`, is a start-up error naming the setting.
 */
export function corsOrigins(cfg: Pick<RouterConfig, "corsOrigins" | "noAuth">): CorsOrigins | undefined {
  if (cfg.corsOrigins === undefined) return undefined;
  const origins = parseCorsOrigins(cfg.corsOrigins);
  if (origins !== "*" && "error" in origins) {
    throw new TensorClawError("config_invalid", `invalid setting --cors-origins: ${origins.error}`);
  }
  if (origins === "*" && cfg.noAuth) {
    throw new TensorClawError(
      "config_invalid",
      "invalid setting --cors-origins: * with --no-auth would let any web page drive this router; name the origins",
    );
  }
  return origins;
}

/** Parses the router's command line and environment. */
export function parseRouterCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
) {
  if (argv.some((a) => a === "--treasury-mnemonic" || a.startsWith("--treasury-mnemonic="))) {
    throw new TensorClawError(
      "config_invalid",
      `invalid setting --treasury-mnemonic: set ${TREASURY_MNEMONIC_ENV} instead (a flag is visible to every local user)`,
    );
  }
  const parsed = parseCommand(ROUTER_OPTIONS, ROUTER_DEFAULTS, argv, env);
  if ((parsed.config.tlsCert === undefined) !== (parsed.config.tlsKey === undefined)) {
    throw new TensorClawError("config_invalid", "invalid setting --tls-cert/--tls-key: give both or neither");
  }
  corsOrigins(parsed.config);
  if (!isValidRouterId(parsed.config.routerId)) {
    throw new TensorClawError(
      "config_invalid",
      "invalid setting --router-id: must be 1-128 visible ASCII characters (no spaces)",
    );
  }
  const salt = parsed.config.userSalt;
  if (salt !== undefined && salt.length < MIN_USER_SALT_LENGTH) {
    throw new TensorClawError(
      "config_invalid",
      `invalid setting --user-salt: must be at least ${MIN_USER_SALT_LENGTH} characters, got ${salt.length}`,
    );
  }
  if (parsed.config.redisWaitReplicas > 0 && parsed.config.redisUrl === undefined) {
    throw new TensorClawError(
      "config_invalid",
      "invalid setting --redis-wait-replicas: needs --redis-url (the embedded ledger has no replicas)",
    );
  }
  const deposits = parsed.config.creditsPerTao !== undefined;
  if (deposits && (parsed.config.treasuryMnemonic ?? "").trim() === "") {
    throw new TensorClawError(
      "config_invalid",
      `invalid setting --credits-per-tao: needs the treasury mnemonic in ${TREASURY_MNEMONIC_ENV} (environment only)`,
    );
  }
  if (deposits && parsed.config.chain === undefined) {
    throw new TensorClawError(
      "config_invalid",
      "invalid setting --credits-per-tao: needs --chain (deposits are read from the chain)",
    );
  }
  return parsed;
}
