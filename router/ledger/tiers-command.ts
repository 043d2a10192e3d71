import { dirname, join } from "node:path";
import { Redis } from "ioredis";
import { defineCommand } from "../../common/command.js";
import { type OptionSpecs, parseCommand } from "../../common/config.js";
import { TensorClawError } from "../../common/errors.js";
import { appendTierLine, DEFAULT_EMBEDDED_LEDGER_FILE, readTierLines } from "./embedded-tiers.js";
import { checkModelId, checkMultiplier, DEFAULT_LEDGER_OPTIONS, DEFAULT_TIER_MULTIPLIER } from "./ledger.js";
import { DEFAULT_LEDGER_PREFIX, RedisLedger } from "./redis.js";

/** Settings of `tensorclaw router tiers`. */
export interface TiersConfig {
  redisUrl: string | undefined;
  redisPrefix: string;
  dataDir: string;
  ledgerFile: string | undefined;
}

/** Defaults, in one place. */
export const TIERS_DEFAULTS: TiersConfig = {
  redisUrl: undefined,
  redisPrefix: DEFAULT_LEDGER_PREFIX,
  dataDir: dirname(DEFAULT_EMBEDDED_LEDGER_FILE),
  ledgerFile: undefined,
};

/** Flags and environment variables of `tensorclaw router tiers`. */
export const TIERS_OPTIONS: OptionSpecs<TiersConfig> = {
  redisUrl: {
    flag: "redis-url",
    kind: "url",
    env: "REDIS_URL",
    schemes: ["redis", "rediss"],
    description: "Redis of the usage ledger; without it the embedded ledger's file is changed.",
  },
  redisPrefix: {
    flag: "redis-prefix",
    kind: "string",
    description: "Key prefix of the ledger in Redis.",
  },
  dataDir: {
    flag: "data-dir",
    kind: "string",
    description:
      "The router's --data-dir: its embedded ledger is <data-dir>/ledger.jsonl (used without Redis).",
  },
  ledgerFile: {
    flag: "ledger-file",
    kind: "string",
    description: "Journal file of the embedded ledger; overrides --data-dir.",
  },
};

/** Parses a multiplier argument strictly (plain decimal, no hex/exponent surprises). */
export function parseMultiplier(text: string): number {
  if (!/^\d+(\.\d+)?$/.test(text)) {
    throw new TensorClawError(
      "invalid_request",
      `multiplier must be a plain decimal number, got ${JSON.stringify(text)}`,
    );
  }
  return checkMultiplier(Number(text));
}

/** Where tiers are kept: Redis or the embedded journal. */
interface TierStore {
  list(): Promise<ReadonlyMap<string, number>>;
  set(model: string, multiplier: number): Promise<void>;
  remove(model: string): Promise<boolean>;
  close(): Promise<void>;
}

/** How long `tensorclaw tiers` waits for Redis before giving up. */
const TIERS_CONNECT_TIMEOUT_MS = 5000;

async function redisStore(url: string, prefix: string): Promise<TierStore> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: TIERS_CONNECT_TIMEOUT_MS,
    retryStrategy: () => null,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
  } catch (cause) {
    redis.disconnect();
    throw new TensorClawError("unavailable", `cannot reach Redis at ${new URL(url).host}`, { cause });
  }
  const ledger = new RedisLedger(redis, DEFAULT_LEDGER_OPTIONS, prefix);
  return {
    list: () => ledger.tiers(),
    set: (model, m) => ledger.setTier(model, m, Date.now()),
    remove: (model) => ledger.removeTier(model, Date.now()),
    close: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

function fileStore(path: string): TierStore {
  return {
    list: () => readTierLines(path),
    set: (model, m) => appendTierLine(path, model, m, Date.now()),
    remove: async (model) => {
      if (!(await readTierLines(path)).has(model)) return false;
      await appendTierLine(path, model, null, Date.now());
      return true;
    },
    close: async () => {},
  };
}

const USAGE = "tensorclaw router tiers set <model> <multiplier> | list | remove <model> [options]";

/** What `router tiers` was asked to do. */
export interface TiersVerb {
  readonly action: "set" | "list" | "remove";
  /** The model (empty for list). */
  readonly model: string;
  /** The multiplier to set (the default for list and remove). */
  readonly multiplier: number;
}

const ARITY = { set: 2, list: 0, remove: 1 } as const;

/** Checks the positional arguments of `router tiers` (verb, model, multiplier); throws naming the fault. */
export function parseTiersVerb(positionals: readonly string[]): TiersVerb {
  const [verb, ...args] = positionals;
  if (verb !== "set" && verb !== "list" && verb !== "remove") throw new Error("expected set, list or remove");
  if (args.length !== ARITY[verb]) throw new Error(`${verb} takes ${ARITY[verb]} argument(s)`);
  return {
    action: verb,
    model: verb === "list" ? "" : checkModelId(args[0] as string),
    multiplier: verb === "set" ? parseMultiplier(args[1] as string) : DEFAULT_TIER_MULTIPLIER,
  };
}

/** `tensorclaw router tiers`: the model → tier multiplier map of the usage ledger. */
export const tiersCommand = defineCommand({
  name: "router tiers",
  summary: "Set, list or remove model tier multipliers of the usage ledger.",
  usage: USAGE,
  description:
    "Business points = tokens / 10,000 × the model's tier multiplier; models without an entry count 1.\n" +
    "Changes go to Redis (--redis-url / REDIS_URL, audited in <prefix>{tiers}:log) or, without it, to the\n" +
    "embedded ledger's journal file (a running embedded router applies them at its next start).",
  options: TIERS_OPTIONS,
  defaults: TIERS_DEFAULTS,
  parse: (argv, env) => parseCommand(TIERS_OPTIONS, TIERS_DEFAULTS, argv, env),
  main: async (parsed, io) => {
    const usageError = (why: string) => {
      io.stderr(`tensorclaw router tiers: ${why}\nUsage: ${USAGE}\n`);
      return 2;
    };
    let verb: TiersVerb;
    try {
      verb = parseTiersVerb(parsed.positionals);
    } catch (err) {
      return usageError((err as Error).message);
    }
    const { action, model, multiplier } = verb;
    const cfg = parsed.config;
    // Same file as the router's routerPaths(dataDir).ledger.
    const file = cfg.ledgerFile ?? join(cfg.dataDir, "ledger.jsonl");
    const store =
      cfg.redisUrl === undefined ? fileStore(file) : await redisStore(cfg.redisUrl, cfg.redisPrefix);
    try {
      if (action === "list") {
        const tiers = await store.list();
        if (tiers.size === 0) io.stdout("no tiers set: every model has multiplier 1\n");
        for (const [m, x] of tiers) io.stdout(`${m}\t${x}\n`);
        return 0;
      }
      if (action === "set") {
        await store.set(model, multiplier);
        io.stdout(`${model}\t${multiplier}\n`);
        return 0;
      }
      if (await store.remove(model)) {
        io.stdout(`removed ${model} (multiplier ${DEFAULT_TIER_MULTIPLIER} from now on)\n`);
        return 0;
      }
      io.stderr(`tensorclaw router tiers: no tier entry for ${model}\n`);
      return 1;
    } finally {
      await store.close();
    }
  },
});
