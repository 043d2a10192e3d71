import { businessPoints } from "../../common/business-points.js";
import { TensorClawError } from "../../common/errors.js";
import { USAGE_OUTCOMES, type UsageEvent } from "../usage/event.js";
import type { OutcomeCounts } from "./outcomes.js";

/**
 * The usage ledger: how many tokens each miner served for users, and how
 * many of them were paid for, per model, in time buckets over a rolling
 * window. Two implementations share
 * this contract and one test suite: `RedisLedger` (production, shared by
 * router replicas) and `EmbeddedLedger` (one process, persisted to a file).
 *
 * # Semantics (both implementations)
 *
 * - An event is bucketed by `finishedAtMs` (clamped to the recording clock,
 *   so a skewed peer cannot push usage into the future): bucket start =
 *   floor(t / bucketMs) * bucketMs.
 * - A bucket is kept while it can still fall in a window of `retentionMs`
 *   (see `windowEdges`); events older than that are refused as `expired`.
 * - Idempotent: a counted event's key is remembered (per miner) for as long
 *   as the event could still count, so any replay of a counted event is a
 *   `duplicate` (or `expired`). The key is:
 *   - `(origin, seq)` when the event carries them (every event a current
 *     router emits, see sequence.ts): bit `seq % SEEN_CHUNK_BITS` of
 *     the bitmap of chunk `floor(seq / SEEN_CHUNK_BITS)` of (miner,
 *     origin). About one bit per request; a chunk lives until the newest
 *     event marked in it can no longer count (`dedupeTtlMs` after that
 *     event's bucket).
 *   - else the request id (events spooled by older routers): the Redis
 *     ledger keeps the ids in one set per (miner, bucket of the event's
 *     finish time), about 90 bytes per request for a day.
 *   The two keys are separate: an event is a duplicate only of an event
 *   with the same kind of key.
 * - Paid tokens are counted apart: an event with `paid: true` adds its
 *   prompt and completion to the paid counts as well as to the totals
 *   (usage recorded before paid tokens were kept reads as 0 paid).
 * - Business points = (paid prompt + paid completion) / 10,000 × the model's
 *   current tier multiplier (1 when none is set), summed over models: only
 *   tokens somebody paid for earn (README, Scoring). A report asked with
 *   `countFreeTraffic` (a dev network's setting, not stored) counts every
 *   token instead.
 */

/** Bucket length and retention, in ms. */
export interface LedgerOptions {
  /** Bucket length (resolution of the window edges). */
  readonly bucketMs: number;
  /** Longest window the ledger can answer. */
  readonly retentionMs: number;
}

/** Defaults: one-minute buckets kept for 24 h. */
export const DEFAULT_LEDGER_OPTIONS: LedgerOptions = Object.freeze({
  bucketMs: 60_000,
  retentionMs: 86_400_000,
});

/** Multiplier of a model without a tier entry. */
export const DEFAULT_TIER_MULTIPLIER = 1;
/** Largest tier multiplier accepted (a typo guard, not a policy). */
export const MAX_TIER_MULTIPLIER = 1_000;
/** Largest token count one event may carry (far above any context window). */
export const MAX_EVENT_TOKENS = 100_000_000;
/** Longest accepted model id / request id / hotkey, in characters. */
export const MAX_ID_LENGTH = 256;
/** Events (seq values) per idempotency bitmap chunk: 8 KiB of bits. */
export const SEEN_CHUNK_BITS = 65_536;
/** What an event origin looks like (see sequence.ts): safe inside key names and journal lines. */
export const ORIGIN_PATTERN = /^[0-9A-Za-z_-]{1,64}$/;

/** The bitmap chunk and bit of an event's seq. */
export function seenSlot(seq: number): { chunk: number; bit: number } {
  return { chunk: Math.floor(seq / SEEN_CHUNK_BITS), bit: seq % SEEN_CHUNK_BITS };
}

/** True when the event is deduplicated by (origin, seq) rather than by request id. */
export function hasSeq(e: UsageEvent): e is UsageEvent & { origin: string; seq: number } {
  return e.origin !== undefined && e.seq !== undefined;
}

/** What recording a batch did, event by event, in totals. */
export interface RecordResult {
  /** Newly counted. */
  counted: number;
  /** Already counted before (same origin and seq, or same request id). */
  duplicates: number;
  /** Too old to fall in any window the ledger keeps. */
  expired: number;
  /** Malformed (bad ids or token counts); never counted. */
  invalid: number;
}

/** Token counts of one (miner, model) or one miner: all of them, and the paid part. */
export interface TokenCounts {
  /** Every credited prompt token, paid or free. */
  readonly promptTokens: number;
  /** Every credited completion token, paid or free. */
  readonly completionTokens: number;
  /** The part of `promptTokens` from paid requests (`UsageEvent.paid`). */
  readonly paidPromptTokens: number;
  /** The part of `completionTokens` from paid requests. */
  readonly paidCompletionTokens: number;
}

/** One model of one miner over a window. */
export interface ModelTotals extends TokenCounts {
  readonly model: string;
  readonly requests: number;
  /** User-request outcomes (see outcomes.ts). */
  readonly outcomes: OutcomeCounts;
  readonly tierMultiplier: number;
  /**
   * Paid tokens (every token when the report counts free traffic) / 10,000
   * × tier; the validator applies the success rate (README, Scoring).
   */
  readonly businessPoints: number;
}

/** One miner over a window; models sorted by points (then id). */
export interface MinerTotals extends TokenCounts {
  readonly hotkey: string;
  readonly models: readonly ModelTotals[];
  readonly requests: number;
  readonly businessPoints: number;
}

/** The ledger's answer for one window; miners sorted by points (then hotkey). */
export interface UsageReport {
  readonly reportTimeMs: number;
  /** Inclusive, bucket-aligned. */
  readonly windowStartMs: number;
  /** Exclusive: the end of the current bucket. */
  readonly windowEndMs: number;
  readonly bucketMs: number;
  /** True when business points count free tokens too (`UsageQuery.countFreeTraffic`). */
  readonly freeTrafficCounted: boolean;
  readonly miners: readonly MinerTotals[];
}

/** What to report. */
export interface UsageQuery {
  /** Window length in ms, at most the retention. */
  readonly windowMs: number;
  /** Only these miners; empty or absent means all. */
  readonly hotkeys?: readonly string[];
  /** The report clock. */
  readonly nowMs: number;
  /**
   * Business points from every token, paid or not (a dev network's setting:
   * the router's `--count-free-traffic`). Absent or false: paid tokens only.
   */
  readonly countFreeTraffic?: boolean;
}

/** Raw counts of one (miner, model) over a window, before tiers apply. */
export interface RawCounts extends TokenCounts {
  readonly hotkey: string;
  readonly model: string;
  readonly requests: number;
  readonly outcomes: OutcomeCounts;
}

/** The usage ledger. Implementations never count an event (by origin/seq, else request id) twice. */
export interface UsageLedger {
  readonly options: LedgerOptions;
  /** Records a batch (in order) at clock `nowMs`. Rejects only when the store cannot be reached. */
  record(events: readonly UsageEvent[], nowMs: number): Promise<RecordResult>;
  /** Usage per miner and model over a window ending at `query.nowMs`. */
  usage(query: UsageQuery): Promise<UsageReport>;
  /** Sets a model's tier multiplier (audited with `nowMs`). */
  setTier(model: string, multiplier: number, nowMs: number): Promise<void>;
  /** Removes a model's tier entry (back to the default 1). Resolves to whether one existed. */
  removeTier(model: string, nowMs: number): Promise<boolean>;
  /** Every tier entry, sorted by model. */
  tiers(): Promise<ReadonlyMap<string, number>>;
  /** Releases connections / flushes files. */
  close(): Promise<void>;
}

/** Start of the bucket holding `t`. */
export function bucketStart(t: number, bucketMs: number): number {
  return Math.floor(t / bucketMs) * bucketMs;
}

/**
 * Exact edges of a window of `windowMs` reported at `nowMs`: it ends at the
 * end of the current bucket (exclusive) and starts a whole number of buckets
 * earlier (the window rounded up to buckets). An event in bucket b therefore
 * counts while b >= start, i.e. until b + windowMs (within one bucket of
 * t + windowMs), and not after.
 */
export function windowEdges(
  nowMs: number,
  windowMs: number,
  bucketMs: number,
): { startMs: number; endMs: number } {
  const endMs = bucketStart(nowMs, bucketMs) + bucketMs;
  const buckets = Math.max(1, Math.ceil(windowMs / bucketMs));
  return { startMs: endMs - buckets * bucketMs, endMs };
}

/** Oldest bucket start the ledger still needs at `nowMs` (older buckets are trimmed). */
export function retentionCutoff(nowMs: number, opts: LedgerOptions): number {
  return windowEdges(nowMs, opts.retentionMs, opts.bucketMs).startMs;
}

/** How long a counted event's key is remembered after its bucket starts, in ms. */
export function dedupeTtlMs(opts: LedgerOptions): number {
  return opts.retentionMs + 2 * opts.bucketMs;
}

/** Throws `config_invalid` unless the options are sane. */
export function checkLedgerOptions(opts: LedgerOptions): LedgerOptions {
  const { bucketMs, retentionMs } = opts;
  if (!Number.isSafeInteger(bucketMs) || bucketMs < 1) {
    throw new TensorClawError("config_invalid", "ledger bucket must be a positive whole number of ms");
  }
  if (!Number.isSafeInteger(retentionMs) || retentionMs < bucketMs) {
    throw new TensorClawError("config_invalid", "ledger retention must be whole ms, at least one bucket");
  }
  return Object.freeze({ bucketMs, retentionMs });
}

// Control characters would corrupt logs, journal lines and key names.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

function okId(s: unknown): s is string {
  return typeof s === "string" && s.length > 0 && s.length <= MAX_ID_LENGTH && !CONTROL_CHARS.test(s);
}

function okCount(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 && n <= MAX_EVENT_TOKENS;
}

/** Origin and seq: both absent, or a well-formed origin with a whole seq >= 0. */
function okSeq(e: UsageEvent): boolean {
  if (e.origin === undefined && e.seq === undefined) return true;
  return (
    typeof e.origin === "string" &&
    ORIGIN_PATTERN.test(e.origin) &&
    typeof e.seq === "number" &&
    Number.isSafeInteger(e.seq) &&
    e.seq >= 0
  );
}

/** True when an event is well formed enough to be counted. */
export function isValidEvent(e: UsageEvent): boolean {
  return (
    typeof e === "object" &&
    e !== null &&
    okId(e.requestId) &&
    okId(e.minerHotkey) &&
    okId(e.model) &&
    okCount(e.promptTokens) &&
    okCount(e.completionTokens) &&
    typeof e.finishedAtMs === "number" &&
    Number.isSafeInteger(e.finishedAtMs) &&
    e.finishedAtMs >= 0 &&
    USAGE_OUTCOMES.includes(e.outcome) &&
    okSeq(e)
  );
}

/** Checks a model id given by an operator. */
export function checkModelId(model: string): string {
  if (!okId(model) || /\s/.test(model)) {
    throw new TensorClawError("invalid_request", `model id must be 1-${MAX_ID_LENGTH} visible characters`);
  }
  return model;
}

/** Checks a tier multiplier given by an operator. */
export function checkMultiplier(multiplier: number): number {
  if (!Number.isFinite(multiplier) || multiplier < 0 || multiplier > MAX_TIER_MULTIPLIER) {
    throw new TensorClawError(
      "invalid_request",
      `tier multiplier must be a number from 0 to ${MAX_TIER_MULTIPLIER}, got ${multiplier}`,
    );
  }
  return multiplier;
}

/** Throws `invalid_request` when a window is outside (0, retention]. */
export function checkWindow(windowMs: number, opts: LedgerOptions): void {
  if (!Number.isFinite(windowMs) || windowMs <= 0) {
    throw new TensorClawError("invalid_request", "window must be positive");
  }
  if (windowMs > opts.retentionMs) {
    throw new TensorClawError(
      "invalid_request",
      `window of ${windowMs / 1000} s is longer than the ledger keeps (${opts.retentionMs / 1000} s)`,
    );
  }
}

const byPoints =
  <T extends { businessPoints: number }>(key: (x: T) => string) =>
  (a: T, b: T) =>
    b.businessPoints - a.businessPoints || (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);

/** How `buildReport` turns counts into points. */
export interface ReportOptions {
  /** Points from every token, not only paid ones (see `UsageQuery.countFreeTraffic`). */
  readonly countFreeTraffic?: boolean;
}

/**
 * Builds a report from raw per-(miner, model) counts and the tier map. Rows
 * with no requests and no tokens are left out (no traffic in the window).
 * Points come from the paid tokens, or from every token with
 * `countFreeTraffic`.
 */
export function buildReport(
  rows: readonly RawCounts[],
  tiers: ReadonlyMap<string, number>,
  nowMs: number,
  windowMs: number,
  opts: LedgerOptions,
  report: ReportOptions = {},
): UsageReport {
  const { startMs, endMs } = windowEdges(nowMs, windowMs, opts.bucketMs);
  const countFree = report.countFreeTraffic === true;
  const perMiner = new Map<string, ModelTotals[]>();
  for (const r of rows) {
    const o = r.outcomes;
    const attempts = o.served + o.failedBeforeOutput + o.failedAfterOutput + o.deadlineCut;
    if (r.requests === 0 && r.promptTokens === 0 && r.completionTokens === 0 && attempts === 0) continue;
    const tierMultiplier = tiers.get(r.model) ?? DEFAULT_TIER_MULTIPLIER;
    const earning = countFree
      ? r.promptTokens + r.completionTokens
      : r.paidPromptTokens + r.paidCompletionTokens;
    const list = perMiner.get(r.hotkey) ?? [];
    list.push({
      model: r.model,
      promptTokens: r.promptTokens,
      completionTokens: r.completionTokens,
      paidPromptTokens: r.paidPromptTokens,
      paidCompletionTokens: r.paidCompletionTokens,
      requests: r.requests,
      outcomes: r.outcomes,
      tierMultiplier,
      businessPoints: businessPoints(earning, tierMultiplier),
    });
    perMiner.set(r.hotkey, list);
  }
  const miners: MinerTotals[] = [];
  for (const [hotkey, models] of perMiner) {
    models.sort(byPoints<ModelTotals>((m) => m.model));
    const sum = { promptTokens: 0, completionTokens: 0, paidPromptTokens: 0, paidCompletionTokens: 0 };
    let n = 0;
    let pts = 0;
    for (const m of models) {
      sum.promptTokens += m.promptTokens;
      sum.completionTokens += m.completionTokens;
      sum.paidPromptTokens += m.paidPromptTokens;
      sum.paidCompletionTokens += m.paidCompletionTokens;
      n += m.requests;
      pts += m.businessPoints;
    }
    miners.push({ hotkey, models, ...sum, requests: n, businessPoints: pts });
  }
  miners.sort(byPoints<MinerTotals>((m) => m.hotkey));
  return {
    reportTimeMs: nowMs,
    windowStartMs: startMs,
    windowEndMs: endMs,
    bucketMs: opts.bucketMs,
    freeTrafficCounted: countFree,
    miners,
  };
}

/** An all-zero result to add to. */
export function emptyResult(): RecordResult {
  return { counted: 0, duplicates: 0, expired: 0, invalid: 0 };
}
