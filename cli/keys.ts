import { basename, dirname, join } from "node:path";
import type { Redis } from "ioredis";
import { defineCommand } from "../common/command.js";
import { type OptionSpecs, parseCommand } from "../common/config.js";
import { TensorClawError } from "../common/errors.js";
import {
  type ApiKeyStore,
  ApiKeys,
  DEFAULT_KEYS_FILE,
  FileApiKeyStore,
  RedisApiKeyStore,
} from "../router/api/keys.js";
import { printDepositAddress } from "./keys-deposit.js";

/** Settings of `tensorclaw keys`. */
export interface KeysConfig {
  redisUrl: string | undefined;
  dataDir: string;
  keysFile: string | undefined;
  name: string;
  rpm: number;
  tpm: number;
  json: boolean;
}

/** Defaults, in one place. */
export const KEYS_DEFAULTS: KeysConfig = {
  redisUrl: undefined,
  dataDir: dirname(DEFAULT_KEYS_FILE),
  keysFile: undefined,
  name: "default",
  rpm: 60,
  tpm: 100_000,
  json: false,
};

/** Flags and environment variables of `tensorclaw keys`. */
export const KEYS_OPTIONS: OptionSpecs<KeysConfig> = {
  redisUrl: {
    flag: "redis-url",
    kind: "url",
    env: "REDIS_URL",
    schemes: ["redis", "rediss"],
    description: "Redis of the router; without it the embedded key file is used.",
  },
  dataDir: {
    flag: "data-dir",
    kind: "string",
    description: "The router's --data-dir: without Redis its keys are in <data-dir>/api-keys.json.",
  },
  keysFile: {
    flag: "keys-file",
    kind: "string",
    description: "Key file of a router without Redis (overrides --data-dir).",
  },
  name: { flag: "name", kind: "string", description: "create: a label for the key." },
  rpm: {
    flag: "rpm",
    kind: "int",
    min: 0,
    max: 10_000_000,
    description: "create: requests per minute (0: unlimited).",
  },
  tpm: {
    flag: "tpm",
    kind: "int",
    min: 0,
    max: 1_000_000_000,
    description: "create: tokens per minute (0: unlimited).",
  },
  json: { flag: "json", kind: "bool", description: "Print JSON instead of text." },
};

function usageError(message: string): never {
  throw new TensorClawError("config_invalid", message);
}

/** Parses `tensorclaw keys` arguments: a verb (create|list|revoke), an id for revoke, and flags. */
export function parseKeysCommand(argv: readonly string[], env: Readonly<Record<string, string | undefined>>) {
  const parsed = parseCommand(KEYS_OPTIONS, KEYS_DEFAULTS, argv, env);
  const [verb, ...rest] = parsed.positionals;
  // TAO deposits (cli/keys-deposit.ts).
  if (verb === "deposit-address") {
    if (rest.length !== 1) usageError("deposit-address takes exactly one key id (see `keys list`)");
    return parsed;
  }
  if (verb !== "create" && verb !== "list" && verb !== "revoke") {
    usageError("expected a subcommand: create, list or revoke");
  }
  if (verb === "revoke" && rest.length !== 1) usageError("revoke takes exactly one key id (see `keys list`)");
  if (verb !== "revoke" && rest.length > 0) usageError(`unexpected argument ${JSON.stringify(rest[0])}`);
  return parsed;
}

function iso(ms: number | null): string {
  return ms === null ? "-" : new Date(ms).toISOString();
}

/** `tensorclaw keys`. */
export const keysCommand = defineCommand({
  name: "keys",
  usage: "tensorclaw keys create|list|revoke <id>|deposit-address <id> [options]",
  description:
    "Keys are stored hashed: in Redis when --redis-url / REDIS_URL is given (as the router uses it),\n" +
    "otherwise in the router's embedded key file (<data-dir>/api-keys.json, or --keys-file). A new key\n" +
    "is printed once and cannot be shown again.",
  options: KEYS_OPTIONS,
  defaults: KEYS_DEFAULTS,
  parse: parseKeysCommand,
  main: async (parsed, io) => {
    const cfg = parsed.config;
    const [verb, id] = parsed.positionals;
    let redis: Redis | undefined;
    let store: ApiKeyStore;
    if (cfg.redisUrl !== undefined) {
      // Loaded here: the key file and `--help` do without it.
      const { Redis } = await import("ioredis");
      redis = new Redis(cfg.redisUrl, {
        maxRetriesPerRequest: 1,
        retryStrategy: () => null,
        lazyConnect: true,
      });
      // Connection failures surface through the awaited command below.
      redis.on("error", () => {});
      await redis.connect();
      store = new RedisApiKeyStore(redis);
    } else {
      store = new FileApiKeyStore(cfg.keysFile ?? join(cfg.dataDir, basename(DEFAULT_KEYS_FILE)));
    }
    const keys = new ApiKeys(store);
    try {
      // TAO deposits (cli/keys-deposit.ts).
      if (verb === "deposit-address") return await printDepositAddress(keys, id as string, cfg.json, io);
      if (verb === "create") {
        const { key, record } = await keys.create(
          cfg.name,
          { requestsPerMinute: cfg.rpm, tokensPerMinute: cfg.tpm },
          Date.now(),
        );
        if (cfg.json) {
          io.stdout(`${JSON.stringify({ key, id: record.id, name: record.name, limits: record.limits })}\n`);
        } else {
          io.stdout(`${key}\n`);
          io.stderr(
            `Created ${record.id} (${record.name}; ${cfg.rpm} req/min, ${cfg.tpm} tokens/min).\n` +
              "The key above is shown once: store it now.\n",
          );
        }
        return 0;
      }
      if (verb === "list") {
        const all = await keys.list();
        if (cfg.json) {
          const safe = all.map(({ hash: _hash, ...rest }) => rest);
          io.stdout(`${JSON.stringify(safe)}\n`);
          return 0;
        }
        for (const r of all) {
          const state = r.revokedAtMs === null ? "active" : `revoked ${iso(r.revokedAtMs)}`;
          io.stdout(
            `${r.id}  ${r.hint}  ${r.name}  rpm=${r.limits.requestsPerMinute} tpm=${r.limits.tokensPerMinute}  ` +
              `created ${iso(r.createdAtMs)}  ${state}\n`,
          );
        }
        return 0;
      }
      const found = await keys.revoke(id as string, Date.now());
      if (!found) {
        io.stderr(`tensorclaw keys: no key with id ${JSON.stringify(id)}\n`);
        return 1;
      }
      io.stdout(`revoked ${id}\n`);
      return 0;
    } finally {
      redis?.disconnect();
    }
  },
});
