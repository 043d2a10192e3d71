import type { LedgerOptions } from "../ledger/ledger.js";
import { windowEdges } from "../ledger/ledger.js";
import {
  type AccountSettings,
  type AccountView,
  DAY_MS,
  type DaySpend,
  type ModelSpend,
  oldestKeptDay,
  utcDay,
} from "./billing.js";
import type { Micros } from "./money.js";

/**
 * The account arithmetic both billing stores share: which UTC days and
 * buckets a view reads, and how raw per-day and per-bucket totals become an
 * `AccountView`. Pure: the stores fetch the rows, this adds them up.
 */

/** Spend of one model on one UTC day, as stored. */
export interface DayRow {
  readonly day: number;
  readonly model: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly costMicros: Micros;
  readonly requests: number;
}

/** What a store read for one key. */
export interface AccountRaw {
  readonly keyId: string;
  readonly settings: AccountSettings | undefined;
  readonly balanceMicros: Micros;
  readonly heldMicros: Micros;
  readonly creditedMicros: Micros;
  readonly spentTotalMicros: Micros;
  /** Day rows from `accountFirstDay(nowMs)` on (others are ignored). */
  readonly days: readonly DayRow[];
  /** Cost per bucket start (any model); only buckets inside the 24 h window count. */
  readonly buckets: readonly { readonly bucketMs: number; readonly costMicros: Micros }[];
}

/** Monday (UTC) of the week holding `day` (day 0, 1970-01-01, was a Thursday). */
export function weekStartDay(day: number): number {
  return day - ((((day + 3) % 7) + 7) % 7);
}

/** The first UTC day of the month holding `nowMs`. */
export function monthStartDay(nowMs: number): number {
  const d = new Date(nowMs);
  return utcDay(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

/** The oldest day an account view reads: the earliest of this week, this month and the last 30 days. */
export function accountFirstDay(nowMs: number): number {
  const today = utcDay(nowMs);
  return Math.min(weekStartDay(today), monthStartDay(nowMs), today - 29);
}

function addModel(into: Map<string, ModelSpend>, r: DayRow): void {
  const cur = into.get(r.model);
  into.set(r.model, {
    model: r.model,
    promptTokens: (cur?.promptTokens ?? 0) + r.promptTokens,
    completionTokens: (cur?.completionTokens ?? 0) + r.completionTokens,
    requests: (cur?.requests ?? 0) + r.requests,
    costMicros: (cur?.costMicros ?? 0) + r.costMicros,
  });
}

/** Per model, most cost first, then by id. */
function sortedModels(m: Map<string, ModelSpend>): ModelSpend[] {
  return [...m.values()].sort(
    (a, b) => b.costMicros - a.costMicros || (a.model < b.model ? -1 : a.model > b.model ? 1 : 0),
  );
}

/** Builds the view of one key at `nowMs` from what its store read. */
export function buildAccountView(raw: AccountRaw, nowMs: number, opts: LedgerOptions): AccountView {
  const today = utcDay(nowMs);
  const week = weekStartDay(today);
  const month = monthStartDay(nowMs);
  const from30 = today - 29;
  let spentToday = 0;
  let spentWeek = 0;
  let spentMonth = 0;
  let spent30d = 0;
  const todayBy = new Map<string, ModelSpend>();
  const last30By = new Map<string, ModelSpend>();
  for (const r of raw.days) {
    if (r.day > today) continue;
    if (r.day === today) {
      spentToday += r.costMicros;
      addModel(todayBy, r);
    }
    if (r.day >= week) spentWeek += r.costMicros;
    if (r.day >= month) spentMonth += r.costMicros;
    if (r.day >= from30) {
      spent30d += r.costMicros;
      addModel(last30By, r);
    }
  }
  const { startMs, endMs } = windowEdges(nowMs, opts.retentionMs, opts.bucketMs);
  let spent24h = 0;
  for (const b of raw.buckets) if (b.bucketMs >= startMs && b.bucketMs < endMs) spent24h += b.costMicros;
  return {
    keyId: raw.keyId,
    settings: raw.settings,
    balanceMicros: raw.balanceMicros,
    heldMicros: raw.heldMicros,
    creditedMicros: raw.creditedMicros,
    spentTodayMicros: spentToday,
    spent24hMicros: spent24h,
    spentWeekMicros: spentWeek,
    spentMonthMicros: spentMonth,
    spent30dMicros: spent30d,
    spentTotalMicros: raw.spentTotalMicros,
    todayByModel: sortedModels(todayBy),
    last30dByModel: sortedModels(last30By),
  };
}

/** Per-day totals (all models) of the kept days up to today, oldest first. */
export function dailyFromRows(rows: readonly DayRow[], nowMs: number): DaySpend[] {
  const first = oldestKeptDay(nowMs);
  const today = utcDay(nowMs);
  const byDay = new Map<number, { p: number; c: number; n: number; u: number }>();
  for (const r of rows) {
    if (r.day < first || r.day > today) continue;
    const t = byDay.get(r.day) ?? { p: 0, c: 0, n: 0, u: 0 };
    t.p += r.promptTokens;
    t.c += r.completionTokens;
    t.n += r.requests;
    t.u += r.costMicros;
    byDay.set(r.day, t);
  }
  return [...byDay]
    .sort(([a], [b]) => a - b)
    .map(([day, t]) => ({
      dayStartMs: day * DAY_MS,
      promptTokens: t.p,
      completionTokens: t.c,
      requests: t.n,
      costMicros: t.u,
    }));
}
