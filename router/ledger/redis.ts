import { readFileSync } from "node:fs";
import type { ChainableCommander } from "ioredis";
import { TensorClawError } from "../../common/errors.js";
import { type BatchCall, pipelineResults, type ReplicaWait, runBatch } from "../../common/redis-batch.js";
import type { RedisClient } from "../../common/redis-connect.js";
import type { UsageEvent } from "../usage/event.js";
import {
  buildReport,
  checkLedgerOptions,
  checkModelId,
  checkMultiplier,
  checkWindow,
  dedupeTtlMs,
  emptyResult,
  hasSeq,
  isValidEvent,
  type LedgerOptions,
  type RawCounts,
  type RecordResult,
  retentionCutoff,
  seenSlot,
  type UsageLedger,
  type UsageQuery,
  type UsageReport,
  windowEdges,
} from "./ledger.js";
import { COUNT_FIELDS, OUTCOME_CODE, outcomesOf, paidOf } from "./outcomes.js";

/**
 * The production ledger on Redis (see router/ledger/lua/*.lua for each
 * mutation). Key layout, with P the key prefix and {hk} the miner's hotkey
 * as a Redis Cluster hash tag:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P{hk}:models` | ZSET | model → latest bucket start seen |
 * | `P{hk}:b` | ZSET | `<bucket start>:<model>`, score = bucket start |
 * | `P{hk}:h` | HASH | `<bucket start>:<model>` → "prompt,completion,requests,…" (the Counts of outcomes.ts); `t:<model>` → running total |
 * | `P{hk}:seen:<origin>:<chunk>` | STRING | bitmap: bit `seq % 65536` of chunk `floor(seq / 65536)` is set once the event (origin, seq) is counted; expires when the newest event marked in it can no longer count |
 * | `P{hk}:ids:<bucket>` | SET | request ids counted with a finish time in that bucket (events without origin/seq); expires when the bucket can no longer count |
 * | `Pminers` | ZSET | hotkey → last recording time (index of miners with traffic) |
 * | `Pleaderboard` | ZSET | hotkey → business points of the latest full-window report |
 * | `P{tiers}` | HASH | model → tier multiplier |
 * | `P{tiers}:log` | LIST | audit trail of tier and catalogue changes (JSON, newest first) |
 * | `P{tiers}:models` | HASH | model → the catalogue's other fields (JSON; router/catalogue) |
 * | `P{tiers}:version` | STRING | counter bumped on every change, polled by running routers |
 *
 * `Pminers` lives in its own slot, so it is written (one ZADD for every
 * miner of a batch) *before* the miners' record scripts: first in the
 * pipeline on one server, acknowledged before the scripts are sent on a
 * cluster (common/redis-batch.ts). A crash in between leaves an index entry
 * with no usage (harmless), never usage without an index entry. Every
 * script's keys carry one miner's tag (or `{tiers}`): one slot per call.
 */

const LUA_DIR = new URL("./lua/", import.meta.url);
/** Events per script call: bounds the time one call holds Redis. */
const EVENTS_PER_CALL = 256;
/** Tier audit entries kept. */
export const TIER_LOG_CAP = 10_000;

function lua(name: string): string {
  return readFileSync(new URL(name, LUA_DIR), "utf8");
}

/** The ledger scripts as ioredis custom commands (first argument: key count). */
interface LedgerCommands {
  tcLedgerRecord(numKeys: number, ...args: (string | number)[]): Promise<[number, number, number]>;
  tcLedgerRead(numKeys: number, ...args: (string | number)[]): Promise<number[]>;
  tcLedgerTierSet(numKeys: number, ...args: (string | number)[]): Promise<string | null>;
  tcLedgerTierRemove(numKeys: number, ...args: (string | number)[]): Promise<number>;
}

type Pipe = ChainableCommander & LedgerCommands;

/** Key names of one ledger, from its prefix. */
export class LedgerKeys {
  constructor(readonly prefix: string) {
    if (prefix.includes("{") || prefix.includes("}")) {
      throw new TensorClawError("config_invalid", "ledger key prefix must not contain { or }");
    }
  }
  models(hk: string): string {
    return `${this.prefix}{${hk}}:models`;
  }
  buckets(hk: string): string {
    return `${this.prefix}{${hk}}:b`;
  }
  counts(hk: string): string {
    return `${this.prefix}{${hk}}:h`;
  }
  /** Idempotency bitmap of one chunk of 65,536 seq values of (miner, origin). */
  seen(hk: string, origin: string, chunk: number): string {
    return `${this.prefix}{${hk}}:seen:${origin}:${chunk}`;
  }
  /** Request ids counted in one bucket (by finish time) of a miner. */
  requestIds(hk: string, bucket: number): string {
    return `${this.prefix}{${hk}}:ids:${bucket}`;
  }
  get miners(): string {
    return `${this.prefix}miners`;
  }
  get leaderboard(): string {
    return `${this.prefix}leaderboard`;
  }
  get tiers(): string {
    return `${this.prefix}{tiers}`;
  }
  get tierLog(): string {
    return `${this.prefix}{tiers}:log`;
  }
  /** The catalogue's other fields per model (router/catalogue/store-redis.ts). */
  get catalogueModels(): string {
    return `${this.prefix}{tiers}:models`;
  }
  /** Bumped on every tier or catalogue change; routers poll it. */
  get catalogueVersion(): string {
    return `${this.prefix}{tiers}:version`;
  }
}

/** A ledger command taking longer fails (the recorder then spools). */
export const LEDGER_COMMAND_TIMEOUT_MS = 5000;
/** Longest wait between two reconnection attempts (they start at 50 ms and grow by 50 ms). */
export const LEDGER_RECONNECT_MAX_MS = 1000;

/**
 * ioredis options for the ledger's client: fail fast while disconnected
 * (the recorder then spools) instead of queueing commands in memory, and
 * keep reconnecting in the background.
 */
export const LEDGER_REDIS_OPTIONS = Object.freeze({
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: LEDGER_COMMAND_TIMEOUT_MS,
  retryStrategy: (attempt: number) => Math.min(50 * attempt, LEDGER_RECONNECT_MAX_MS),
});

/** Default key prefix of the production ledger. */
export const DEFAULT_LEDGER_PREFIX = "tc:";

/**
 * Usage ledger on Redis. The client is owned by the caller (`close` does not
 * quit it) so one connection can serve the ledger and other router stores.
 * The client should fail fast while disconnected (`enableOfflineQueue:
 * false`, `maxRetriesPerRequest: 0`) so the recorder can fall back to its
 * spool instead of queueing in memory.
 */
export class RedisLedger implements UsageLedger {
  readonly options: LedgerOptions;
  readonly keys: LedgerKeys;
  readonly #redis: RedisClient;
  readonly #replicaWait: ReplicaWait | undefined;

  /**
   * With `replicaWait`, a batch of usage is recorded only once that many
   * replicas of each master written have it (`--redis-wait-replicas`);
   * until then `record` fails and the recorder spools the batch.
   */
  constructor(
    redis: RedisClient,
    options: LedgerOptions,
    prefix: string = DEFAULT_LEDGER_PREFIX,
    replicaWait?: ReplicaWait,
  ) {
    this.options = checkLedgerOptions(options);
    this.keys = new LedgerKeys(prefix);
    this.#redis = redis;
    this.#replicaWait = replicaWait;
    // defineCommand is idempotent per client; it loads by EVALSHA with an
    // EVAL fallback, so a restarted (script-less) Redis is handled.
    const defs: [string, string][] = [
      ["tcLedgerRecord", "record.lua"],
      ["tcLedgerRead", "read.lua"],
      ["tcLedgerTierSet", "tier-set.lua"],
      ["tcLedgerTierRemove", "tier-remove.lua"],
    ];
    for (const [name, file] of defs) {
      if (!(name in redis)) redis.defineCommand(name, { lua: lua(file) });
    }
  }

  async record(events: readonly UsageEvent[], nowMs: number): Promise<RecordResult> {
    const result = emptyResult();
    const byMiner = new Map<string, UsageEvent[]>();
    for (const e of events) {
      if (!isValidEvent(e)) {
        result.invalid++;
        continue;
      }
      const list = byMiner.get(e.minerHotkey);
      if (list === undefined) byMiner.set(e.minerHotkey, [e]);
      else list.push(e);
    }
    if (byMiner.size === 0) return result;
    const cutoff = retentionCutoff(nowMs, this.options);
    const keep = dedupeTtlMs(this.options);
    const bucketMs = this.options.bucketMs;
    const k = this.keys;
    const index: (string | number)[] = [];
    const scripts: BatchCall[] = [];
    for (const [hk, list] of byMiner) {
      index.push(nowMs, hk);
      for (let i = 0; i < list.length; i += EVENTS_PER_CALL) {
        const chunk = list.slice(i, i + EVENTS_PER_CALL);
        const keys: string[] = [k.models(hk), k.buckets(hk), k.counts(hk)];
        const args: (string | number)[] = [nowMs, bucketMs, cutoff, keep];
        for (const e of chunk) {
          const tail = `\t${e.model}\t${e.finishedAtMs}\t${e.promptTokens}\t${e.completionTokens}\t`;
          const outcome = `\t${OUTCOME_CODE[e.outcome]}\t${e.paid === true ? 1 : 0}`;
          if (hasSeq(e)) {
            const { chunk: c, bit } = seenSlot(e.seq);
            keys.push(k.seen(hk, e.origin, c));
            // The request id is not needed on this path: leave it out.
            args.push(`${tail}${bit}${outcome}`);
          } else {
            keys.push(k.requestIds(hk, e.finishedAtMs - (e.finishedAtMs % bucketMs)));
            args.push(`${e.requestId}${tail}${outcome}`);
          }
        }
        scripts.push({
          key: k.counts(hk),
          run: (p) => (p as Pipe).tcLedgerRecord(keys.length, ...keys, ...args),
        });
      }
    }
    // The index first (see the class comment), then the scripts.
    const values = await runBatch(
      this.#redis,
      [[{ key: k.miners, run: (p) => p.zadd(k.miners, "GT", ...index) }], scripts],
      this.#replicaWait,
    );
    for (const v of values.slice(1)) {
      const [c, d, x] = v as [number, number, number];
      result.counted += c;
      result.duplicates += d;
      result.expired += x;
    }
    return result;
  }

  async usage(query: UsageQuery): Promise<UsageReport> {
    checkWindow(query.windowMs, this.options);
    const { nowMs } = query;
    const k = this.keys;
    const cutoff = retentionCutoff(nowMs, this.options);
    const { startMs, endMs } = windowEdges(nowMs, query.windowMs, this.options.bucketMs);
    const filtered = query.hotkeys !== undefined && query.hotkeys.length > 0;
    let hotkeys: readonly string[];
    if (filtered) {
      hotkeys = [...new Set(query.hotkeys)];
    } else {
      // A miner recorded nothing since the cutoff has nothing to report.
      await this.#redis.zremrangebyscore(k.miners, "-inf", `(${cutoff - this.options.bucketMs}`);
      hotkeys = await this.#redis.zrange(k.miners, "0", "-1");
    }
    // One script call per miner (its own slot) reads its models and sums.
    const values = await runBatch(this.#redis, [
      [
        ...hotkeys.map(
          (hk): BatchCall => ({
            key: k.counts(hk),
            run: (p) =>
              (p as Pipe).tcLedgerRead(3, k.models(hk), k.buckets(hk), k.counts(hk), cutoff, startMs, endMs),
          }),
        ),
        { key: k.tiers, run: (p) => p.hgetall(k.tiers) },
      ],
    ]);
    const tiers = parseTiers(values[hotkeys.length] as Record<string, string>);
    const rows: RawCounts[] = [];
    hotkeys.forEach((hotkey, i) => {
      // Per model: the id, then the COUNT_FIELDS numbers (read.lua).
      const flat = values[i] as (string | number)[];
      const stride = 1 + COUNT_FIELDS;
      for (let j = 0; j + stride <= flat.length; j += stride) {
        const counts = flat.slice(j + 1, j + stride).map(Number);
        rows.push({
          hotkey,
          model: String(flat[j]),
          promptTokens: counts[0] ?? 0,
          completionTokens: counts[1] ?? 0,
          ...paidOf(counts),
          requests: counts[2] ?? 0,
          outcomes: outcomesOf(counts),
        });
      }
    });
    const report = buildReport(rows, tiers, nowMs, query.windowMs, this.options, {
      countFreeTraffic: query.countFreeTraffic === true,
    });
    if (!filtered && query.windowMs === this.options.retentionMs) await this.#storeLeaderboard(report);
    return report;
  }

  async #storeLeaderboard(report: UsageReport): Promise<void> {
    const k = this.keys.leaderboard;
    const tx = this.#redis.multi().del(k);
    if (report.miners.length > 0) {
      const flat: (string | number)[] = [];
      for (const m of report.miners) flat.push(m.businessPoints, m.hotkey);
      tx.zadd(k, ...flat);
    }
    pipelineResults(await tx.exec());
  }

  /**
   * Miners ranked by business points as of the latest full-window report
   * (highest first): a cheap read for dashboards. Validators use GetUsage.
   */
  async leaderboard(limit: number): Promise<{ hotkey: string; points: number }[]> {
    const flat = await this.#redis.zrevrange(this.keys.leaderboard, 0, limit - 1, "WITHSCORES");
    const out: { hotkey: string; points: number }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      out.push({ hotkey: flat[i] as string, points: Number(flat[i + 1]) });
    }
    return out;
  }

  async setTier(model: string, multiplier: number, nowMs: number): Promise<void> {
    checkModelId(model);
    checkMultiplier(multiplier);
    const cmd = this.#redis as unknown as LedgerCommands;
    await cmd.tcLedgerTierSet(
      3,
      this.keys.tiers,
      this.keys.tierLog,
      this.keys.catalogueVersion,
      nowMs,
      model,
      String(multiplier),
      TIER_LOG_CAP,
    );
  }

  async removeTier(model: string, nowMs: number): Promise<boolean> {
    checkModelId(model);
    const cmd = this.#redis as unknown as LedgerCommands;
    return (
      (await cmd.tcLedgerTierRemove(
        4,
        this.keys.tiers,
        this.keys.tierLog,
        this.keys.catalogueModels,
        this.keys.catalogueVersion,
        nowMs,
        model,
        TIER_LOG_CAP,
      )) === 1
    );
  }

  async tiers(): Promise<ReadonlyMap<string, number>> {
    return parseTiers(await this.#redis.hgetall(this.keys.tiers));
  }

  /** The tier audit trail, newest first. */
  async tierLog(limit = 100): Promise<unknown[]> {
    const raw = await this.#redis.lrange(this.keys.tierLog, 0, limit - 1);
    return raw.map((s) => JSON.parse(s) as unknown);
  }

  async close(): Promise<void> {
    // The client belongs to the caller.
  }
}

/** Tier map from the Redis hash; entries that are not numbers are ignored (and never written by us). */
function parseTiers(raw: Record<string, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const model of Object.keys(raw).sort()) {
    const v = Number(raw[model]);
    if (Number.isFinite(v) && v >= 0) out.set(model, v);
  }
  return out;
}
