import { dirname, join } from "node:path";
import type { OptionSpecs } from "../../common/config.js";
import { TensorClawError } from "../../common/errors.js";
import { openRedis, redisWhere } from "../../common/redis-connect.js";
import { DEFAULT_EMBEDDED_LEDGER_FILE, readTierLines } from "../ledger/embedded-tiers.js";
import { DEFAULT_LEDGER_PREFIX } from "../ledger/redis.js";
import { defaultEntry } from "./entry.js";
import type { CatalogueStore } from "./store.js";
import { CATALOGUE_FILE_NAME, FileCatalogueStore } from "./store-file.js";

/** Where `router models` and `router tiers` find the catalogue. */
export interface CatalogueStoreConfig {
  redisUrl: string | undefined;
  redisPrefix: string;
  dataDir: string;
  catalogueFile: string | undefined;
}

/** Defaults, in one place: the router's own. */
export const CATALOGUE_STORE_DEFAULTS: CatalogueStoreConfig = {
  redisUrl: undefined,
  redisPrefix: DEFAULT_LEDGER_PREFIX,
  dataDir: dirname(DEFAULT_EMBEDDED_LEDGER_FILE),
  catalogueFile: undefined,
};

/** Flags and environment variables shared by the catalogue commands. */
export const CATALOGUE_STORE_OPTIONS: OptionSpecs<CatalogueStoreConfig> = {
  redisUrl: {
    flag: "redis-url",
    kind: "redis-url",
    env: "REDIS_URL",
    description:
      "Redis of the router (redis://host:port or redis+cluster://h1:p1,h2:p2); without it the catalogue file in --data-dir is changed.",
  },
  redisPrefix: {
    flag: "redis-prefix",
    kind: "string",
    description: "Key prefix of the router's data in Redis.",
  },
  dataDir: {
    flag: "data-dir",
    kind: "string",
    description: `The router's --data-dir: without Redis the catalogue is <data-dir>/${CATALOGUE_FILE_NAME}.`,
  },
  catalogueFile: {
    flag: "catalogue-file",
    kind: "string",
    description: "Catalogue file used without Redis; overrides --data-dir.",
  },
};

/**
 * Brings tier entries that an older router kept in its embedded ledger's
 * journal into a catalogue file that has never been written, once, so an
 * upgrade keeps the operator's tiers (each becomes a catalogue model with
 * default details). Resolves to the number of models brought over.
 */
export async function migrateLegacyTiers(
  store: FileCatalogueStore,
  ledgerFile: string,
  nowMs: number,
): Promise<number> {
  if ((await store.version()) !== "absent") return 0;
  const tiers = await readTierLines(ledgerFile);
  for (const [model, tier] of tiers) await store.set(defaultEntry(model, tier), nowMs);
  return tiers.size;
}

/** The router's catalogue file in a data folder. */
export function catalogueFileIn(dataDir: string): string {
  return join(dataDir, CATALOGUE_FILE_NAME);
}

/**
 * Opens the catalogue a command works on: in Redis when a URL is given (a
 * client of its own, closed by the store's `close`), else the file, after
 * bringing over legacy tiers from the embedded ledger beside it.
 */
export async function openCatalogueStore(cfg: CatalogueStoreConfig, nowMs: number): Promise<CatalogueStore> {
  if (cfg.redisUrl === undefined) {
    const file = cfg.catalogueFile ?? catalogueFileIn(cfg.dataDir);
    const store = new FileCatalogueStore(file);
    await migrateLegacyTiers(store, join(dirname(file), "ledger.jsonl"), nowMs);
    return store;
  }
  // Loaded only now: `--help` and the file store need neither.
  const { RedisCatalogueStore } = await import("./store-redis.js");
  const redis = await openRedis(cfg.redisUrl, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    retryStrategy: () => null,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
  } catch (cause) {
    redis.disconnect();
    throw new TensorClawError("unavailable", `cannot reach Redis at ${redisWhere(cfg.redisUrl)}`, {
      cause,
    });
  }
  const store = new RedisCatalogueStore(redis, cfg.redisPrefix);
  return {
    read: () => store.read(),
    version: () => store.version(),
    set: (e, t) => store.set(e, t),
    remove: (id, t) => store.remove(id, t),
    close: async () => {
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}
