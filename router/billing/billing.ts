import { TensorClawError } from "../../common/errors.js";
import type { RequestApp, UsageEvent } from "../usage/event.js";

export type { RequestApp } from "../usage/event.js";

import type { Micros } from "./money.js";

/**
 * Billing of API keys: balances, holds, spend and generation records, kept
 * beside the miner ledger (README, For API users). Two implementations share
 * this contract and one test suite: `RedisBilling` (every key's data under
 * the hash tag `{key:<id>}`, one Lua script per mutation) and
 * `EmbeddedBilling` (one process, persisted to a journal file).
 *
 * # Semantics (both implementations)
 *
 * - Money is integer micros (money.ts). A key is *metered* once it has an
 *   account (`configure` with `metered: true`): its requests need a hold
 *   and its settled costs come off its balance. Other keys are unmetered:
 *   no holds, no balance, but their spend is still recorded.
 * - `hold` reserves a request's worst-case cost atomically: it succeeds
 *   only while balance − active holds ≥ amount and, with a daily budget,
 *   spent today (UTC) + active holds + amount ≤ budget. A hold expires at
 *   `nowMs + ttlMs` (a router that died mid-request cannot lock funds).
 * - `settle` takes the final usage events of requests (those carrying
 *   `billing`): per event, exactly once per (key, request id), it removes
 *   the request's hold, takes the cost off a metered balance (it may go
 *   below zero only by the difference between a cost and its hold, which
 *   the hold makes impossible), adds tokens, cost and one request to the
 *   key's spend in the event's bucket (ledger bucket length, kept 24 h)
 *   and UTC day (kept 90 days), per model, and writes the generation
 *   record (kept 30 days).
 * - `credit` appends an audited entry (amount, note, source, time) to the
 *   key's log and adds it to the balance, exactly once per entry id; an
 *   entry is never edited or removed. A negative amount is a correction.
 */
export interface BillingStore {
  /** Opens (or updates) a key's account settings. A new metered account starts at balance 0. */
  configure(keyId: string, settings: AccountSettings, nowMs: number): Promise<void>;
  /** A key's settings; undefined for an unmetered key (never configured). */
  settings(keyId: string): Promise<AccountSettings | undefined>;
  /** Appends a credit entry; false when an entry with its id was applied before (nothing changes). */
  credit(entry: CreditEntry): Promise<boolean>;
  /** Reserves a request's worst-case cost on a metered key's balance. */
  hold(h: HoldRequest): Promise<HoldResult>;
  /** Drops a request's hold without charging (the request ended with no usage event). */
  release(keyId: string, requestId: string, nowMs: number): Promise<void>;
  /** Settles final usage events (those with `billing`); others are ignored. Idempotent. */
  settle(events: readonly UsageEvent[], nowMs: number): Promise<SettleResult>;
  /** A key's balance and spend. */
  account(keyId: string, nowMs: number): Promise<AccountView>;
  /** One generation record of a key; undefined when unknown, expired or another key's. */
  generation(keyId: string, requestId: string, nowMs: number): Promise<GenerationRecord | undefined>;
  /**
   * A key's most recent generation records still kept at `nowMs`, newest
   * (by `createdAtMs`, then id) first, at most `limit` (clamped to
   * 1..RECENT_GENERATIONS_MAX). Only the newest RECENT_GENERATIONS_MAX
   * requests of a key are indexed: older ones stay readable one by one.
   */
  recentGenerations(keyId: string, limit: number, nowMs: number): Promise<GenerationRecord[]>;
  /** A key's spend per UTC day over the days kept (DAILY_RETENTION_DAYS up to today), oldest first; days without spend are left out. */
  daily(keyId: string, nowMs: number): Promise<DaySpend[]>;
  /** A key's credit entries, newest first. */
  entries(keyId: string, limit: number): Promise<CreditEntry[]>;
  /** A named cursor (the deposit watcher's last processed block); undefined when never set. */
  cursor(name: string): Promise<string | undefined>;
  setCursor(name: string, value: string): Promise<void>;
  close(): Promise<void>;
}

/** How a key is billed. */
export interface AccountSettings {
  /** True: requests need a hold and costs come off the balance. */
  readonly metered: boolean;
  /** Most the key may spend per UTC day; null for no daily budget. */
  readonly budgetDailyMicros: Micros | null;
}

/** Where a credit came from. */
export type CreditSource = "operator" | "deposit";

/** One audited balance change. */
export interface CreditEntry {
  /** Unique per entry; a deposit's is `tao:<block hash>:<event index>`. */
  readonly id: string;
  readonly keyId: string;
  /** Positive to add credit, negative for a correction. */
  readonly amountMicros: Micros;
  readonly note: string;
  readonly source: CreditSource;
  readonly atMs: number;
}

/** A request asking to reserve its worst-case cost. */
export interface HoldRequest {
  readonly keyId: string;
  readonly requestId: string;
  readonly amountMicros: Micros;
  readonly nowMs: number;
  /** How long the hold lives if never settled or released. */
  readonly ttlMs: number;
}

/** The answer to a hold. */
export type HoldResult =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** `credits`: balance − holds is short; `budget`: the daily budget would be passed. */
      readonly reason: "credits" | "budget";
      /** What the key could still reserve now. */
      readonly availableMicros: Micros;
    };

/** What settling a batch did. */
export interface SettleResult {
  /** Events settled now. */
  settled: number;
  /** Events settled before (same key and request id). */
  duplicates: number;
  /** Events without `billing`, or malformed. */
  ignored: number;
}

/** Spend of one model over a span. */
export interface ModelSpend {
  readonly model: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly requests: number;
  readonly costMicros: Micros;
}

/** A key's money as of `nowMs`. */
export interface AccountView {
  readonly keyId: string;
  /** Undefined for an unmetered key. */
  readonly settings: AccountSettings | undefined;
  /** Credits minus settled costs (0 for an unmetered key). */
  readonly balanceMicros: Micros;
  /** Active holds. */
  readonly heldMicros: Micros;
  /** Sum of all credit entries. */
  readonly creditedMicros: Micros;
  /** Settled costs: UTC today, the last 24 h (buckets), this UTC week (Mon-Sun), month, last 30 days, all time. */
  readonly spentTodayMicros: Micros;
  readonly spent24hMicros: Micros;
  readonly spentWeekMicros: Micros;
  readonly spentMonthMicros: Micros;
  readonly spent30dMicros: Micros;
  readonly spentTotalMicros: Micros;
  /** Per model, sorted by cost then id. */
  readonly todayByModel: readonly ModelSpend[];
  readonly last30dByModel: readonly ModelSpend[];
}

/** A key's spend on one UTC day. */
export interface DaySpend {
  /** Start of the day (Unix ms, UTC midnight). */
  readonly dayStartMs: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly requests: number;
  readonly costMicros: Micros;
}

/** What a key can read about one of its requests (`GET /api/v1/generation`). */
export interface GenerationRecord {
  /** The request's `x-request-id`. */
  readonly id: string;
  readonly keyId: string;
  readonly model: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly costMicros: Micros;
  /** Request start (Unix ms). */
  readonly createdAtMs: number;
  /** First token after the start, ms; null when none came. */
  readonly ttftMs: number | null;
  /** Start to end, ms. */
  readonly latencyMs: number;
  /** OpenAI finish reason, or null (failed, cancelled). */
  readonly finishReason: string | null;
  readonly streamed: boolean;
  /** The usage outcome (completed, cancelled, failed, ...). */
  readonly outcome: string;
  /** The app that sent it, when it named one. */
  readonly app?: RequestApp;
}

/** How long generation records are kept unless the operator says otherwise (and at most). */
export const GENERATION_TTL_MS = 30 * 86_400_000;
/**
 * The shortest generation retention an operator may set. A record is also
 * its request's settled marker, and an event older than the retention is
 * refused rather than risk charging it twice: spooled usage must reach the
 * store within it, so it has to outlast a Redis outage.
 */
export const MIN_GENERATION_RETENTION_MS = 3_600_000;

/** A generation retention (`--generation-retention-s`), checked; undefined is the default, 30 days. */
export function checkGenerationRetention(ms: number | undefined): number {
  if (ms === undefined) return GENERATION_TTL_MS;
  if (!Number.isSafeInteger(ms) || ms < MIN_GENERATION_RETENTION_MS || ms > GENERATION_TTL_MS) {
    throw new TensorClawError(
      "config_invalid",
      "generation retention must be whole ms from one hour to 30 days",
    );
  }
  return ms;
}
/** Most generation records a key's recent list holds (and `recentGenerations` returns). */
export const RECENT_GENERATIONS_MAX = 100;

/** A requested list length as a whole number in 1..RECENT_GENERATIONS_MAX. */
export function recentLimit(limit: number): number {
  const n = Math.floor(limit);
  return Number.isFinite(n) ? Math.min(RECENT_GENERATIONS_MAX, Math.max(1, n)) : RECENT_GENERATIONS_MAX;
}

/** Newest first: later `createdAtMs`, then the larger id (the order a Redis ZREVRANGE gives ties). */
export function newestFirst(a: GenerationRecord, b: GenerationRecord): number {
  return b.createdAtMs - a.createdAtMs || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

/** How long daily spend totals are kept. */
export const DAILY_RETENTION_DAYS = 90;
/** One UTC day. */
export const DAY_MS = 86_400_000;

/** The UTC day number (days since the epoch) of a time. */
export function utcDay(tMs: number): number {
  return Math.floor(tMs / DAY_MS);
}

/** The oldest UTC day whose spend totals are still kept at `nowMs` (older days are trimmed). */
export function oldestKeptDay(nowMs: number): number {
  return utcDay(nowMs) - DAILY_RETENTION_DAYS + 1;
}
