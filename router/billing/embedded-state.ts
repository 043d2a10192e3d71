import type { LedgerOptions } from "../ledger/ledger.js";
import { bucketStart, retentionCutoff } from "../ledger/ledger.js";
import { type AccountRaw, accountFirstDay, type DayRow } from "./account-view.js";
import {
  type AccountSettings,
  type CreditEntry,
  type HoldRequest,
  type HoldResult,
  oldestKeptDay,
  utcDay,
} from "./billing.js";
import type { SettleItem } from "./check.js";
import { type ExpiringGeneration, RecentGenerations } from "./embedded-recent.js";
import type { Micros } from "./money.js";

/**
 * The in-memory state of the embedded billing store (embedded.ts): one
 * account per key, generation records, cursors. Every change goes through a
 * method here, whether it comes from a live call or from replaying a journal
 * line (embedded-journal.ts), so both paths agree by construction.
 */

/** Prompt, completion, cost, requests. */
export type SpendCounts = [number, number, number, number];

/** One key's money and spend. */
export interface Account {
  settings: AccountSettings | undefined;
  balance: Micros;
  credited: Micros;
  spent: Micros;
  /** Oldest first. */
  readonly entries: CreditEntry[];
  readonly entryIds: Set<string>;
  /** Request id → hold (memory only). */
  readonly holds: Map<string, { amount: Micros; expiresAtMs: number }>;
  /** `<bucket start>\t<model>` → counts. */
  readonly buckets: Map<string, SpendCounts>;
  /** `<UTC day>\t<model>` → counts. */
  readonly days: Map<string, SpendCounts>;
  /** UTC day → cost that day (all models), for the daily budget. */
  readonly dayCost: Map<number, Micros>;
}

/** A generation record and when it (and the request's settled marker) goes. */
export type StoredGeneration = ExpiringGeneration;

function addCounts(into: Map<string, SpendCounts>, key: string, add: readonly number[]): void {
  const cur = into.get(key);
  if (cur === undefined) into.set(key, [add[0] ?? 0, add[1] ?? 0, add[2] ?? 0, add[3] ?? 0]);
  else for (let i = 0; i < 4; i++) cur[i] = (cur[i] ?? 0) + (add[i] ?? 0);
}

/** The whole state of one embedded billing store. */
export class BillingState {
  readonly options: LedgerOptions;
  readonly accounts = new Map<string, Account>();
  /** `<key id>\n<request id>` → record. Changed only through `keepGeneration` and `trimAll`. */
  readonly generations = new Map<string, StoredGeneration>();
  /** Each key's newest records, kept beside `generations`. */
  readonly recent = new RecentGenerations();
  readonly cursors = new Map<string, string>();

  constructor(options: LedgerOptions) {
    this.options = options;
  }

  account(keyId: string): Account {
    let a = this.accounts.get(keyId);
    if (a === undefined) {
      a = {
        settings: undefined,
        balance: 0,
        credited: 0,
        spent: 0,
        entries: [],
        entryIds: new Set(),
        holds: new Map(),
        buckets: new Map(),
        days: new Map(),
        dayCost: new Map(),
      };
      this.accounts.set(keyId, a);
    }
    return a;
  }

  configure(keyId: string, settings: AccountSettings): void {
    this.account(keyId).settings = settings;
  }

  /** Applies a credit entry; false when its id was applied before. `toBalance` false: log only (compacted lines). */
  credit(entry: CreditEntry, toBalance = true): boolean {
    const a = this.account(entry.keyId);
    if (a.entryIds.has(entry.id)) return false;
    a.entryIds.add(entry.id);
    a.entries.push(entry);
    if (toBalance) {
      a.balance += entry.amountMicros;
      a.credited += entry.amountMicros;
    }
    return true;
  }

  /** Drops holds that expired at `nowMs`; returns what the live ones hold. */
  heldMicros(a: Account, nowMs: number): Micros {
    let held = 0;
    for (const [id, h] of a.holds) {
      if (h.expiresAtMs <= nowMs) a.holds.delete(id);
      else held += h.amount;
    }
    return held;
  }

  hold(h: HoldRequest): HoldResult {
    const a = this.accounts.get(h.keyId);
    const s = a?.settings;
    if (a === undefined || s === undefined || (!s.metered && s.budgetDailyMicros === null))
      return { ok: true };
    const held = this.heldMicros(a, h.nowMs);
    if (a.holds.has(h.requestId)) return { ok: true };
    const credits = s.metered ? a.balance - held : Number.POSITIVE_INFINITY;
    const budget =
      s.budgetDailyMicros === null
        ? Number.POSITIVE_INFINITY
        : s.budgetDailyMicros - (a.dayCost.get(utcDay(h.nowMs)) ?? 0) - held;
    if (credits < h.amountMicros || budget < h.amountMicros) {
      return {
        ok: false,
        reason: credits < h.amountMicros ? "credits" : "budget",
        availableMicros: Math.max(0, Math.min(credits, budget)),
      };
    }
    a.holds.set(h.requestId, { amount: h.amountMicros, expiresAtMs: h.nowMs + h.ttlMs });
    return { ok: true };
  }

  release(keyId: string, requestId: string): void {
    this.accounts.get(keyId)?.holds.delete(requestId);
  }

  /** True when the request was settled (its generation marker is live at `nowMs`). */
  isSettled(keyId: string, requestId: string, nowMs: number): boolean {
    const g = this.generations.get(`${keyId}\n${requestId}`);
    return g !== undefined && g.expiresAtMs > nowMs;
  }

  /** What settling `item` takes off the balance now: its cost on a metered key, else 0. */
  chargeOf(item: SettleItem): Micros {
    return this.accounts.get(item.keyId)?.settings?.metered === true ? item.costMicros : 0;
  }

  /**
   * Settles one item (the caller checked it is not settled yet): removes its
   * hold, takes `charged` off the balance, adds its spend, keeps its record.
   */
  settle(item: SettleItem, charged: Micros, nowMs: number): void {
    const a = this.account(item.keyId);
    if (item.holdId === undefined) {
      a.holds.delete(item.requestId);
    } else {
      // A lease: the cost comes off it, what is left still holds for the lease's other requests.
      const lease = a.holds.get(item.holdId);
      if (lease !== undefined) lease.amount -= Math.min(item.costMicros, lease.amount);
    }
    a.balance -= charged;
    a.spent += item.costMicros;
    this.keepGeneration({ record: item.record, expiresAtMs: item.expiresAtMs });
    const add = [item.promptTokens, item.completionTokens, item.costMicros, 1];
    const b = bucketStart(item.atMs, this.options.bucketMs);
    if (b >= retentionCutoff(nowMs, this.options)) addCounts(a.buckets, `${b}\t${item.model}`, add);
    const day = utcDay(item.atMs);
    if (day >= oldestKeptDay(nowMs)) {
      addCounts(a.days, `${day}\t${item.model}`, add);
      a.dayCost.set(day, (a.dayCost.get(day) ?? 0) + item.costMicros);
    }
  }

  /** Keeps a generation record (a settled request's, or one read back from a compacted journal). */
  keepGeneration(g: StoredGeneration): void {
    this.generations.set(`${g.record.keyId}\n${g.record.id}`, g);
    this.recent.add(g);
  }

  /** Adds compacted bucket or day counts. */
  addSpend(
    keyId: string,
    kind: "bucket" | "day",
    at: number,
    model: string,
    counts: readonly number[],
  ): void {
    const a = this.account(keyId);
    if (kind === "bucket") {
      addCounts(a.buckets, `${at}\t${model}`, counts);
    } else {
      addCounts(a.days, `${at}\t${model}`, counts);
      a.dayCost.set(at, (a.dayCost.get(at) ?? 0) + (counts[2] ?? 0));
    }
  }

  /** Removes buckets, days and generation records that are gone at `nowMs`. */
  trimAll(nowMs: number): void {
    for (const a of this.accounts.values()) this.trimAccount(a, nowMs);
    for (const [k, g] of this.generations) if (g.expiresAtMs <= nowMs) this.generations.delete(k);
    this.recent.trim(nowMs);
  }

  trimAccount(a: Account, nowMs: number): void {
    const cutoff = retentionCutoff(nowMs, this.options);
    for (const k of a.buckets.keys()) if (Number(k.slice(0, k.indexOf("\t"))) < cutoff) a.buckets.delete(k);
    const first = oldestKeptDay(nowMs);
    for (const k of a.days.keys()) if (Number(k.slice(0, k.indexOf("\t"))) < first) a.days.delete(k);
    for (const d of a.dayCost.keys()) if (d < first) a.dayCost.delete(d);
  }

  /** Day rows of a key from day `from` on. */
  dayRows(a: Account, from: number): DayRow[] {
    const rows: DayRow[] = [];
    for (const [k, [p, c, u, n]] of a.days) {
      const tab = k.indexOf("\t");
      const day = Number(k.slice(0, tab));
      if (day < from) continue;
      rows.push({
        day,
        model: k.slice(tab + 1),
        promptTokens: p,
        completionTokens: c,
        costMicros: u,
        requests: n,
      });
    }
    return rows;
  }

  /** What an account view of `keyId` at `nowMs` needs. */
  raw(keyId: string, nowMs: number): AccountRaw {
    const a = this.accounts.get(keyId);
    if (a === undefined) {
      return {
        keyId,
        settings: undefined,
        balanceMicros: 0,
        heldMicros: 0,
        creditedMicros: 0,
        spentTotalMicros: 0,
        days: [],
        buckets: [],
      };
    }
    const buckets: { bucketMs: number; costMicros: Micros }[] = [];
    for (const [k, counts] of a.buckets) {
      buckets.push({ bucketMs: Number(k.slice(0, k.indexOf("\t"))), costMicros: counts[2] });
    }
    return {
      keyId,
      settings: a.settings,
      balanceMicros: a.balance,
      heldMicros: this.heldMicros(a, nowMs),
      creditedMicros: a.credited,
      spentTotalMicros: a.spent,
      days: this.dayRows(a, accountFirstDay(nowMs)),
      buckets,
    };
  }

  /** Records that a compaction writes out: roughly its line count. */
  liveRecords(): number {
    let n = this.generations.size + this.cursors.size;
    for (const a of this.accounts.values()) n += 2 + a.entries.length + a.buckets.size + a.days.size;
    return n;
  }
}
