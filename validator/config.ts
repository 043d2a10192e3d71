import { type OptionSpecs, parseCommand } from "../common/config.js";
import { TensorClawError } from "../common/errors.js";
import { splitRouterUrl } from "../common/router-id.js";
import { LOG_LEVEL_OPTION, type LogLevel, WALLET_OPTIONS } from "../common/shared-options.js";
import { DEFAULT_LATENCY_TIERS, formatLatencyTiers, parseLatencyTiers } from "./latency-tiers.js";
import { PROBE_TIMEOUT_MS } from "./probe-timeout.js";
import { RECONNECT_GRACE_MS } from "./reconnect-grace.js";
import { SIMULATE_CHAIN_CHOICES } from "./simulated-chain.js";

/** Settings of `tensorclaw validator`. */
export interface ValidatorConfig {
  router: readonly string[];
  wallet: string | undefined;
  hotkey: string | undefined;
  walletPath: string | undefined;
  chain: string | undefined;
  /** A dry run's in-process chain instead of --chain: commit-reveal off (`set-weights`) or on. */
  simulateChain: (typeof SIMULATE_CHAIN_CHOICES)[number];
  netuid: number;
  probeIntervalS: number;
  probeConcurrency: number;
  weightsIntervalS: number;
  redisUrl: string | undefined;
  stateFile: string;
  dryRun: boolean;
  once: boolean;
  probeTimeoutMs: number;
  /** After a router starts, how long its missing miners are not taken as disconnected. */
  reconnectGraceMs: number;
  /** Response-time tiers between 100 ms and 2 s, `ms:score,…` (validated monotone). */
  latencyTiers: string;
  /** Share of probes that are audits (answers checked against the model), 0 to 1. */
  verifyShare: number;
  /** JSON-lines file of the operator's own probe prompts (kept private); else the built-in generator. */
  probeCorpus: string | undefined;
  /** Reference servers, `model=URL` each (an OpenAI-compatible server of that model with prompt logprobs). */
  reference: readonly string[];
  /** BIP-39 mnemonic of the hotkey, from TENSORCLAW_MNEMONIC only; never logged. */
  mnemonic: string | undefined;
  logLevel: LogLevel;
}

/** Defaults, in one place. */
export const VALIDATOR_DEFAULTS: ValidatorConfig = {
  router: [],
  wallet: undefined,
  hotkey: undefined,
  walletPath: undefined,
  chain: undefined,
  simulateChain: "off",
  netuid: 92,
  probeIntervalS: 60,
  // High enough that a round over 256 miners, half of them silent, still ends
  // within one probe deadline (probes cost the validator almost nothing).
  probeConcurrency: 256,
  weightsIntervalS: 1200,
  redisUrl: undefined,
  stateFile: ".tensorclaw/validator-state.json",
  dryRun: false,
  once: false,
  probeTimeoutMs: PROBE_TIMEOUT_MS,
  reconnectGraceMs: RECONNECT_GRACE_MS,
  latencyTiers: formatLatencyTiers(DEFAULT_LATENCY_TIERS),
  verifyShare: 0.2,
  probeCorpus: undefined,
  reference: [],
  mnemonic: undefined,
  logLevel: "info",
};

/** Flags and environment variables of `tensorclaw validator`. */
export const VALIDATOR_OPTIONS: OptionSpecs<ValidatorConfig> = {
  router: {
    flag: "router",
    kind: "list",
    schemes: ["grpc", "grpcs"],
    description:
      "Router gRPC address grpc://host:port[?id=<router-id>]; calls are signed for that router id (read from the router when not given); several replicas sharing one ledger fail over in order.",
  },
  ...WALLET_OPTIONS,
  chain: {
    flag: "chain",
    kind: "url",
    schemes: ["ws", "wss"],
    description: "Subtensor endpoint ws://… or wss://….",
  },
  simulateChain: {
    flag: "simulate-chain",
    kind: "enum",
    choices: SIMULATE_CHAIN_CHOICES,
    description:
      "With --dry-run and no --chain: plan weights against an in-process subnet with commit-reveal off (set-weights) or on (commit-reveal: prints the timelocked commit's reveal round and size).",
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
    kind: "redis-url",
    env: "TENSORCLAW_VALIDATOR_REDIS_URL",
    description:
      "Redis (redis://host:port or redis+cluster://h1:p1,h2:p2) for probe history and pending commits (else --state-file).",
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
  probeTimeoutMs: {
    flag: "probe-timeout-ms",
    kind: "int",
    // The router decides a liveness probe at 8 s: waiting less would record nothing for slow miners.
    min: PROBE_TIMEOUT_MS,
    max: 30_000,
    description: "How long to wait for the router to report a liveness probe (its own deadline is 8 s).",
  },
  reconnectGraceMs: {
    flag: "reconnect-grace-ms",
    kind: "int",
    min: 0,
    max: 3_600_000,
    description:
      "For this long after a router (re)started, a known miner it does not list is not failed as disconnected (its miners may still be reconnecting).",
  },
  latencyTiers: {
    flag: "latency-tiers",
    kind: "string",
    description:
      "Response-time tiers between <100 ms (100) and >2 s (20) as ms:score pairs; bounds rise, scores fall, last ends at 2000.",
  },
  verifyShare: {
    flag: "verify-share",
    kind: "number",
    min: 0,
    max: 1,
    description:
      "Share of probes that are audits: a deterministic prompt answered in full and checked against the model (reference, peers or a one-answer prompt).",
  },
  probeCorpus: {
    flag: "probe-corpus",
    kind: "string",
    description:
      'Probe prompts: a JSON-lines file of chat requests ({"messages": [...]} each), kept private; default the built-in generator.',
  },
  reference: {
    flag: "reference",
    kind: "list",
    description:
      "MODEL=URL: audits of MODEL are scored by this OpenAI-compatible server of the same weights (vLLM: /tokenize and /v1/completions with echo and logprobs; /v1/embeddings for a model that serves only embeddings); without one, by agreement among miners.",
  },
  mnemonic: {
    flag: "mnemonic",
    kind: "string",
    env: "TENSORCLAW_MNEMONIC",
    secret: true,
    description: "Hotkey mnemonic; environment only (the flag form is refused so it never shows in ps).",
  },
  logLevel: LOG_LEVEL_OPTION,
};

/** Parses the validator's command line and environment. */
export function parseValidatorCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
) {
  if (argv.some((a) => a === "--mnemonic" || a.startsWith("--mnemonic="))) {
    throw new TensorClawError(
      "config_invalid",
      "invalid setting --mnemonic: set TENSORCLAW_MNEMONIC instead (a flag is visible to every local user)",
    );
  }
  const parsed = parseCommand(VALIDATOR_OPTIONS, VALIDATOR_DEFAULTS, argv, env);
  // Fails with config_invalid naming --latency-tiers when not monotone.
  parseLatencyTiers(parsed.config.latencyTiers);
  // Fails with config_invalid naming --reference when malformed.
  parseReferences(parsed.config.reference);
  const [sub, ...extra] = parsed.positionals;
  if (!parsed.help && (extra.length > 0 || (sub !== undefined && sub !== "scores"))) {
    throw new TensorClawError(
      "config_invalid",
      `invalid setting ${JSON.stringify(parsed.positionals.join(" "))}: the only subcommand is "scores"`,
    );
  }
  if (!parsed.help && parsed.config.simulateChain !== "off") {
    // A simulated chain can only be read: it must never stand in for the chain weights go to.
    const why = !parsed.config.dryRun
      ? "needs --dry-run (a simulated chain takes no weights)"
      : parsed.config.chain !== undefined
        ? "cannot be used with --chain (the real chain is read then)"
        : undefined;
    if (why !== undefined) {
      throw new TensorClawError("config_invalid", `invalid setting --simulate-chain: ${why}`);
    }
  }
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
  if (!parsed.help && parsed.config.router.length === 0) {
    throw new TensorClawError(
      "config_invalid",
      "invalid setting --router: at least one router is required (grpc://host:port)",
    );
  }
  // A malformed ?id= would pin nothing: refuse it at startup.
  for (const url of parsed.config.router) splitRouterUrl(url, "--router");
  return parsed;
}

/**
 * The `--reference MODEL=URL` settings as a map from model id to server
 * URL. Malformed entries (no `=`, an empty model, a model given twice, a
 * URL that is not http(s)) are a startup error naming the setting.
 */
export function parseReferences(items: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of items) {
    const at = item.indexOf("=");
    const model = at < 0 ? "" : item.slice(0, at).trim();
    const url = at < 0 ? "" : item.slice(at + 1).trim();
    const bad = (why: string) =>
      new TensorClawError("config_invalid", `invalid setting --reference ${JSON.stringify(item)}: ${why}`);
    if (model === "" || url === "") throw bad("expected MODEL=URL");
    if (out.has(model)) throw bad(`${model} has two references`);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw bad("the URL does not parse");
    }
    if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw bad("the URL must be http(s)");
    out.set(model, url);
  }
  return out;
}
