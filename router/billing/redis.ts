import { readFileSync } from "node:fs";
import type { ChainableCommander } from "ioredis";
import { TensorClawError } from "../../common/errors.js";
import { type BatchCall, type ReplicaWait, runBatch } from "../../common/redis-batch.js";
import type { RedisClient } from "../../common/redis-connect.js";
import {
  bucketStart,
  checkLedgerOptions,
  type LedgerOptions,
  retentionCutoff,
  windowEdges,
} from "../ledger/ledger.js";
import { DEFAULT_LEDGER_PREFIX } from "../ledger/redis.js";
import type { UsageEvent } from "../usage/event.js";
import {
  type AccountRaw,
  accountFirstDay,
  buildAccountView,
  type DayRow,
  dailyFromRows,
} from "./account-view.js";
import {
  type AccountSettings,
  type AccountView,
  type BillingStore,
  type CreditEntry,
  checkGenerationRetention,
  DAY_MS,
  type DaySpend,
  type GenerationRecord,
  type HoldRequest,
  type HoldResult,
  oldestKeptDay,
  RECENT_GENERATIONS_MAX,
  recentLimit,
  type SettleResult,
  utcDay,
} from "./billing.js";
import {
  checkCreditEntry,
  checkCursor,
  checkHold,
  checkKeyId,
  checkSettings,
  generationFrom,
  isId,
  isKeyId,
  isMicros,
  type SettleItem,
  settleItem,
} from "./check.js";

/**
 * Billing on Redis, beside the miner ledger (see router/billing/lua/*.lua
 * for each mutation). Key layout, with P the key prefix (the ledger's,
 * "tc:" by default) and {key:<id>} the API key id as a Redis Cluster hash
 * tag, so every script touches one slot:
 *
 * | key | type | holds |
 * |---|---|---|
 * | `P{key:<id>}:a` | HASH | `metered` (1/0), `budget` (micros; absent: none), `balance`, `credited`, `held` (sum of holds), `spent` (all time), `created` |
 * | `P{key:<id>}:ids` | SET | ids of the credit entries applied |
 * | `P{key:<id>}:log` | LIST | credit entries (JSON), newest first; never trimmed or edited |
 * | `P{key:<id>}:holds` | ZSET | request id → hold expiry (Unix ms, the caller's clock) |
 * | `P{key:<id>}:hamt` | HASH | request id → held micros |
 * | `P{key:<id>}:s` | HASH | `b:<bucket>:<model>:<f>` and `d:<day>:<model>:<f>` (f: p prompt, c completion, u cost, n requests); `D:<day>` cost that UTC day |
 * | `P{key:<id>}:bz` | ZSET | `<bucket>:<model>`, score = bucket start (24 h kept) |
 * | `P{key:<id>}:dz` | ZSET | `<day>:<model>`, score = UTC day number (90 days kept) |
 * | `P{key:<id>}:gz` | ZSET | request id → created at (ms): the key's newest RECENT_GENERATIONS_MAX generations |
 * | `P{key:<id>}:g:<request id>` | STRING | generation record, compact and tab-separated (settle.lua; `{"g":record,"x":expiresAtMs}` JSON from routers before it), PX until the generation retention after the request; also its settled marker |
 * | `P{cursors}` | HASH | cursor name → value (the deposit watcher's last block) |
 *
 * Money is whole micros everywhere, added with HINCRBY: never a float.
 */

const LUA_DIR = new URL("./lua/", import.meta.url);
/** Events per settle script call: bounds the time one call holds Redis. */
const EVENTS_PER_CALL = 200;

function lua(name: string): string {
  return readFileSync(new URL(name, LUA_DIR), "utf8");
}

type Args = (string | number)[];

/** The billing scripts as ioredis custom commands (first argument: key count). */
interface BillingCommands {
  tcBillConfigure(numKeys: number, ...args: Args): Promise<number>;
  tcBillCredit(numKeys: number, ...args: Args): Promise<number>;
  tcBillHold(numKeys: number, ...args: Args): Promise<[number, string?, number?]>;
  tcBillRelease(numKeys: number, ...args: Args): Promise<number>;
  tcBillSettle(numKeys: number, ...args: Args): Promise<[number, number]>;
  tcBillRead(numKeys: number, ...args: Args): Promise<[string[], string[], string[], string[]]>;
  tcBillRecent(numKeys: number, ...args: Args): Promise<[string[], (string | null)[]]>;
}

type Pipe = ChainableCommander & BillingCommands;

/** Key names of the billing data, from the ledger's prefix. */
export class BillingKeys {
  constructor(readonly prefix: string) {
    if (prefix.includes("{") || prefix.includes("}")) {
      throw new TensorClawError("config_invalid", "billing key prefix must not contain { or }");
    }
  }
  #k(keyId: string, suffix: string): string {
    return `${this.prefix}{key:${keyId}}:${suffix}`;
  }
  account(keyId: string): string {
    return this.#k(keyId, "a");
  }
  entryIds(keyId: string): string {
    return this.#k(keyId, "ids");
  }
  log(keyId: string): string {
    return this.#k(keyId, "log");
  }
  holds(keyId: string): string {
    return this.#k(keyId, "holds");
  }
  holdAmounts(keyId: string): string {
    return this.#k(keyId, "hamt");
  }
  spend(keyId: string): string {
    return this.#k(keyId, "s");
  }
  buckets(keyId: string): string {
    return this.#k(keyId, "bz");
  }
  days(keyId: string): string {
    return this.#k(keyId, "dz");
  }
  generation(keyId: string, requestId: string): string {
    return this.#k(keyId, `g:${requestId}`);
  }
  /** What a request id is appended to for its generation record's key (recent.lua). */
  generationPrefix(keyId: string): string {
    return this.#k(keyId, "g:");
  }
  recentGenerations(keyId: string): string {
    return this.#k(keyId, "gz");
  }
  get cursors(): string {
    return `${this.prefix}{cursors}`;
  }
  /** The six keys every account script gets first (settle.lua, read.lua). */
  accountKeys(keyId: string): string[] {
    return [
      this.account(keyId),
      this.holds(keyId),
      this.holdAmounts(keyId),
      this.spend(keyId),
      this.buckets(keyId),
      this.days(keyId),
    ];
  }
}

/** Parses an account hash's settings; undefined when it was never configured. */
function settingsOf(
  metered: string | null | undefined,
  budget: string | null | undefined,
): AccountSettings | undefined {
  if (metered === null || metered === undefined) return undefined;
  return {
    metered: metered === "1",
    budgetDailyMicros: budget === null || budget === undefined ? null : Number(budget),
  };
}

/** How a compact generation record (settle.lua) starts: its format version and a tab. */
const COMPACT_RECORD = "2\t";

/**
 * A stored generation record of request `requestId` of `keyId`, when readable
 * and live at `nowMs`: compact (settle.lua), or the `{"g":record,"x":expiry}`
 * JSON that routers before it wrote (kept for their records' lifetime).
 */
function storedGeneration(
  text: string,
  keyId: string,
  requestId: string,
  nowMs: number,
): GenerationRecord | undefined {
  let doc: { g?: unknown; x?: unknown };
  if (text.startsWith(COMPACT_RECORD)) {
    const f = text.split("\t");
    if (f.length !== 14) return undefined;
    const [, model, p, c, u, created, ttft, latency, finish, streamed, outcome, expiry, referer, title] = f;
    const num = (s: string | undefined) => (s === undefined || s === "" ? Number.NaN : Number(s));
    const app =
      referer || title ? { ...(referer ? { referer } : {}), ...(title ? { title } : {}) } : undefined;
    doc = {
      g: {
        id: requestId,
        keyId,
        model,
        promptTokens: num(p),
        completionTokens: num(c),
        costMicros: num(u),
        createdAtMs: num(created),
        ttftMs: ttft === "" ? null : num(ttft),
        latencyMs: num(latency),
        finishReason: finish === "" ? null : finish,
        streamed: streamed === "1",
        outcome,
        app,
      },
      x: num(expiry),
    };
  } else {
    try {
      doc = JSON.parse(text) as { g?: unknown; x?: unknown };
    } catch {
      return undefined;
    }
  }
  const g = generationFrom(doc.g);
  if (g === undefined || g.keyId !== keyId || g.id !== requestId) return undefined;
  return typeof doc.x === "number" && doc.x > nowMs ? g : undefined;
}

function entryOf(json: string): CreditEntry | undefined {
  try {
    const e = JSON.parse(json) as CreditEntry;
    return isId(e.id) && isKeyId(e.keyId) && isMicros(e.amountMicros, true) ? e : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Billing on Redis. The client is owned by the caller (`close` does not quit
 * it), like `RedisLedger`'s, and should fail fast while disconnected
 * (LEDGER_REDIS_OPTIONS) so settling can fall back to the usage spool.
 */
export class RedisBilling implements BillingStore {
  readonly options: LedgerOptions;
  readonly keys: BillingKeys;
  readonly #redis: RedisClient;
  readonly #replicaWait: ReplicaWait | undefined;
  readonly #cmd: BillingCommands;
  readonly #retentionMs: number;

  /**
   * With `replicaWait`, settled charges count as written only once that
   * many replicas of each master written have them (`--redis-wait-replicas`);
   * until then `settle` fails and the recorder spools their usage.
   */
  constructor(
    redis: RedisClient,
    options: LedgerOptions,
    prefix: string = DEFAULT_LEDGER_PREFIX,
    replicaWait?: ReplicaWait,
    /** How long generation records are kept (`--generation-retention-s`; default 30 days). */
    generationRetentionMs?: number,
  ) {
    this.options = checkLedgerOptions(options);
    this.#retentionMs = checkGenerationRetention(generationRetentionMs);
    this.keys = new BillingKeys(prefix);
    this.#redis = redis;
    this.#replicaWait = replicaWait;
    this.#cmd = redis as unknown as BillingCommands;
    // defineCommand loads by EVALSHA with an EVAL fallback (a restarted Redis has no scripts).
    const defs: [string, string][] = [
      ["tcBillConfigure", "configure.lua"],
      ["tcBillCredit", "credit.lua"],
      ["tcBillHold", "hold.lua"],
      ["tcBillRelease", "release.lua"],
      ["tcBillSettle", "settle.lua"],
      ["tcBillRead", "read.lua"],
      ["tcBillRecent", "recent.lua"],
    ];
    for (const [name, file] of defs) {
      if (!(name in redis)) redis.defineCommand(name, { lua: lua(file) });
    }
  }

  async configure(keyId: string, settings: AccountSettings, nowMs: number): Promise<void> {
    checkKeyId(keyId);
    const s = checkSettings(settings);
    const budget = s.budgetDailyMicros === null ? "" : String(s.budgetDailyMicros);
    const args = [this.keys.account(keyId), s.metered ? "1" : "0", budget, nowMs] as const;
    if (this.#replicaWait === undefined) await this.#cmd.tcBillConfigure(1, ...args);
    else
      await runBatch(
        this.#redis,
        [[{ key: args[0], run: (p) => (p as Pipe).tcBillConfigure(1, ...args) }]],
        this.#replicaWait,
      );
  }

  async settings(keyId: string): Promise<AccountSettings | undefined> {
    if (!isKeyId(keyId)) return undefined;
    const [metered, budget] = await this.#redis.hmget(this.keys.account(keyId), "metered", "budget");
    return settingsOf(metered, budget);
  }

  async credit(entry: CreditEntry): Promise<boolean> {
    const e = checkCreditEntry(entry);
    const k = this.keys;
    const json = JSON.stringify(e);
    const keys = [k.account(e.keyId), k.entryIds(e.keyId), k.log(e.keyId)];
    if (this.#replicaWait === undefined) {
      return (await this.#cmd.tcBillCredit(3, ...keys, e.id, String(e.amountMicros), json)) === 1;
    }
    // A credit the replicas lack fails: the caller (the deposit watcher, or an operator running
    // `keys credit --entry-id` again) credits the same entry id, which a master that applied it
    // already ignores. The repeat writes again all the same ("1": credit.lua), so its WAIT, from
    // a connection that may never have written the first, tells whether the replicas have it.
    const args = [e.id, String(e.amountMicros), json, "1"];
    const [r] = await runBatch(
      this.#redis,
      [[{ key: keys[0] as string, run: (p) => (p as Pipe).tcBillCredit(3, ...keys, ...args) }]],
      this.#replicaWait,
    );
    return r === 1;
  }

  async hold(h: HoldRequest): Promise<HoldResult> {
    checkHold(h);
    const k = this.keys;
    const r = await this.#cmd.tcBillHold(
      4,
      k.account(h.keyId),
      k.holds(h.keyId),
      k.holdAmounts(h.keyId),
      k.spend(h.keyId),
      h.nowMs,
      h.requestId,
      String(h.amountMicros),
      h.nowMs + h.ttlMs,
      utcDay(h.nowMs),
    );
    if (r[0] === 1) return { ok: true };
    return {
      ok: false,
      reason: r[1] === "budget" ? "budget" : "credits",
      availableMicros: Number(r[2] ?? 0),
    };
  }

  async release(keyId: string, requestId: string, _nowMs: number): Promise<void> {
    if (!isKeyId(keyId) || !isId(requestId)) return;
    const k = this.keys;
    await this.#cmd.tcBillRelease(3, k.account(keyId), k.holds(keyId), k.holdAmounts(keyId), requestId);
  }

  async settle(events: readonly UsageEvent[], nowMs: number): Promise<SettleResult> {
    const result: SettleResult = { settled: 0, duplicates: 0, ignored: 0 };
    const byKey = new Map<string, SettleItem[]>();
    for (const e of events) {
      const item = settleItem(e, nowMs, this.#retentionMs);
      if (item === undefined) {
        result.ignored++;
        continue;
      }
      const list = byKey.get(item.keyId);
      if (list === undefined) byKey.set(item.keyId, [item]);
      else list.push(item);
    }
    if (byKey.size === 0) return result;
    const cutoff = retentionCutoff(nowMs, this.options);
    const firstDay = oldestKeptDay(nowMs);
    // A record lives until 30 days after its request finished: a day's slack covers any request's length.
    const recentCutoff = nowMs - this.#retentionMs - DAY_MS;
    // One round trip: every key's batches in one batch (common/redis-batch.ts), each script on
    // its key's slot.
    const calls: BatchCall[] = [];
    for (const [keyId, items] of byKey) {
      for (let i = 0; i < items.length; i += EVENTS_PER_CALL) {
        const chunk = items.slice(i, i + EVENTS_PER_CALL);
        const keys = [...this.keys.accountKeys(keyId), this.keys.recentGenerations(keyId)];
        const args: Args = [cutoff, firstDay, keyId, recentCutoff, RECENT_GENERATIONS_MAX];
        for (const it of chunk) {
          keys.push(this.keys.generation(keyId, it.requestId));
          const r = it.record;
          // One tab-separated argument per event (settle.lua builds the record from it).
          args.push(
            `${it.requestId}\t${bucketStart(it.atMs, this.options.bucketMs)}\t${utcDay(it.atMs)}\t${it.model}` +
              `\t${it.promptTokens}\t${it.completionTokens}\t${it.costMicros}` +
              `\t${Math.max(1, it.expiresAtMs - nowMs)}\t${it.holdId ?? ""}` +
              `\t${r.createdAtMs}\t${r.ttftMs ?? ""}\t${r.latencyMs}\t${r.finishReason ?? ""}` +
              `\t${r.streamed ? 1 : 0}\t${r.outcome}\t${it.expiresAtMs}` +
              `\t${r.app?.referer ?? ""}\t${r.app?.title ?? ""}`,
          );
        }
        calls.push({
          key: keys[0] as string,
          run: (p) => (p as Pipe).tcBillSettle(keys.length, ...keys, ...args),
        });
      }
    }
    const values = await runBatch(this.#redis, [calls], this.#replicaWait);
    for (const v of values) {
      const [s, d] = v as [number, number];
      result.settled += s;
      result.duplicates += d;
    }
    return result;
  }

  async #read(keyId: string, nowMs: number, fromDay: number, withBuckets: boolean): Promise<AccountRaw> {
    const { startMs, endMs } = withBuckets
      ? windowEdges(nowMs, this.options.retentionMs, this.options.bucketMs)
      : { startMs: 0, endMs: 0 };
    const [acct, holds, buckets, days] = await this.#cmd.tcBillRead(
      6,
      ...this.keys.accountKeys(keyId),
      nowMs,
      startMs,
      endMs,
      fromDay,
    );
    const a = new Map<string, string>();
    for (let i = 0; i + 1 < acct.length; i += 2) a.set(acct[i] as string, acct[i + 1] as string);
    const num = (f: string) => Number(a.get(f) ?? 0);
    const rows: DayRow[] = [];
    for (let i = 0; i + 4 < days.length; i += 5) {
      const m = days[i] as string;
      const colon = m.indexOf(":");
      rows.push({
        day: Number(m.slice(0, colon)),
        model: m.slice(colon + 1),
        promptTokens: Number(days[i + 1]),
        completionTokens: Number(days[i + 2]),
        costMicros: Number(days[i + 3]),
        requests: Number(days[i + 4]),
      });
    }
    const bucketCosts: { bucketMs: number; costMicros: number }[] = [];
    for (let i = 0; i + 1 < buckets.length; i += 2) {
      const m = buckets[i] as string;
      bucketCosts.push({ bucketMs: Number(m.slice(0, m.indexOf(":"))), costMicros: Number(buckets[i + 1]) });
    }
    return {
      keyId,
      settings: settingsOf(a.get("metered"), a.get("budget")),
      balanceMicros: num("balance"),
      heldMicros: holds.reduce((n, x) => n + Number(x), 0),
      creditedMicros: num("credited"),
      spentTotalMicros: num("spent"),
      days: rows,
      buckets: bucketCosts,
    };
  }

  async account(keyId: string, nowMs: number): Promise<AccountView> {
    checkKeyId(keyId);
    const raw = await this.#read(keyId, nowMs, accountFirstDay(nowMs), true);
    return buildAccountView(raw, nowMs, this.options);
  }

  async daily(keyId: string, nowMs: number): Promise<DaySpend[]> {
    checkKeyId(keyId);
    const raw = await this.#read(keyId, nowMs, oldestKeptDay(nowMs), false);
    return dailyFromRows(raw.days, nowMs);
  }

  async generation(keyId: string, requestId: string, nowMs: number): Promise<GenerationRecord | undefined> {
    if (!isKeyId(keyId) || !isId(requestId)) return undefined;
    const text = await this.#redis.get(this.keys.generation(keyId, requestId));
    return text === null ? undefined : storedGeneration(text, keyId, requestId, nowMs);
  }

  async recentGenerations(keyId: string, limit: number, nowMs: number): Promise<GenerationRecord[]> {
    if (!isKeyId(keyId)) return [];
    const k = this.keys;
    const [ids, texts] = await this.#cmd.tcBillRecent(
      1,
      k.recentGenerations(keyId),
      k.generationPrefix(keyId),
      recentLimit(limit),
    );
    const out: GenerationRecord[] = [];
    ids.forEach((id, i) => {
      const t = texts[i];
      const g = t === null || t === undefined ? undefined : storedGeneration(t, keyId, id, nowMs);
      if (g !== undefined) out.push(g);
    });
    return out;
  }

  async entries(keyId: string, limit: number): Promise<CreditEntry[]> {
    checkKeyId(keyId);
    const n = Math.floor(limit);
    if (!(n > 0)) return [];
    const raw = await this.#redis.lrange(this.keys.log(keyId), 0, n - 1);
    const out: CreditEntry[] = [];
    for (const s of raw) {
      const e = entryOf(s);
      if (e !== undefined) out.push(e);
    }
    return out;
  }

  async cursor(name: string): Promise<string | undefined> {
    checkCursor(name);
    return (await this.#redis.hget(this.keys.cursors, name)) ?? undefined;
  }

  async setCursor(name: string, value: string): Promise<void> {
    checkCursor(name, value);
    await this.#redis.hset(this.keys.cursors, name, value);
  }

  async close(): Promise<void> {
    // The client belongs to the caller.
  }
}
