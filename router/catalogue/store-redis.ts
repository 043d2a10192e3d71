import { readFileSync } from "node:fs";
import { pipelineResults } from "../../common/redis-batch.js";
import type { RedisClient } from "../../common/redis-connect.js";
import { checkModelId } from "../ledger/ledger.js";
import { DEFAULT_LEDGER_PREFIX, LedgerKeys, TIER_LOG_CAP } from "../ledger/redis.js";
import { type CatalogueEntry, checkEntry, detailsOf, entryFromStored } from "./entry.js";
import type { CatalogueStore } from "./store.js";

const LUA_DIR = new URL("./lua/", import.meta.url);

interface CatalogueCommands {
  tcModelSet(numKeys: number, ...args: (string | number)[]): Promise<number>;
  tcModelRemove(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

/**
 * The catalogue in Redis, on the ledger's tier keys (see lua/model-set.lua):
 * a model is in the catalogue exactly when it has a tier entry, so the
 * ledger and the router can never disagree on which models earn. Every
 * key is tagged `{tiers}`, one slot, so each change is one script even on
 * a Redis Cluster. The client belongs to the caller.
 */
export class RedisCatalogueStore implements CatalogueStore {
  readonly keys: LedgerKeys;
  readonly #redis: RedisClient;

  constructor(redis: RedisClient, prefix: string = DEFAULT_LEDGER_PREFIX) {
    this.keys = new LedgerKeys(prefix);
    this.#redis = redis;
    for (const [name, file] of [
      ["tcModelSet", "model-set.lua"],
      ["tcModelRemove", "model-remove.lua"],
    ] as const) {
      if (!(name in redis)) redis.defineCommand(name, { lua: readFileSync(new URL(file, LUA_DIR), "utf8") });
    }
  }

  get #cmd(): CatalogueCommands {
    return this.#redis as unknown as CatalogueCommands;
  }

  async read(): Promise<{ entries: CatalogueEntry[]; skipped: number }> {
    // Both keys carry the `{tiers}` tag: one slot, so one pipeline even on a cluster.
    const [tiers, details] = pipelineResults(
      await this.#redis.pipeline().hgetall(this.keys.tiers).hgetall(this.keys.catalogueModels).exec(),
    ) as [Record<string, string>, Record<string, string>];
    const entries: CatalogueEntry[] = [];
    let skipped = 0;
    for (const id of Object.keys(tiers).sort()) {
      let parsed: unknown;
      try {
        parsed = details[id] === undefined ? undefined : JSON.parse(details[id]);
      } catch {
        parsed = null;
        skipped++;
        continue;
      }
      const e = entryFromStored(id, Number(tiers[id]), parsed);
      if (e === undefined) skipped++;
      else entries.push(e);
    }
    return { entries, skipped };
  }

  async version(): Promise<string> {
    return (await this.#redis.get(this.keys.catalogueVersion)) ?? "0";
  }

  async set(entry: CatalogueEntry, nowMs: number): Promise<void> {
    const e = checkEntry(entry);
    await this.#cmd.tcModelSet(
      4,
      this.keys.tiers,
      this.keys.catalogueModels,
      this.keys.tierLog,
      this.keys.catalogueVersion,
      nowMs,
      e.id,
      String(e.tier),
      JSON.stringify(detailsOf(e)),
      TIER_LOG_CAP,
    );
  }

  async remove(id: string, nowMs: number): Promise<boolean> {
    checkModelId(id);
    const removed = await this.#cmd.tcModelRemove(
      4,
      this.keys.tiers,
      this.keys.catalogueModels,
      this.keys.tierLog,
      this.keys.catalogueVersion,
      nowMs,
      id,
      TIER_LOG_CAP,
    );
    return removed === 1;
  }

  async close(): Promise<void> {
    // The client belongs to the caller.
  }
}
