import type { FileHandle } from "node:fs/promises";
import { mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import type { UsageEvent } from "../usage/event.js";
import { compactJournal, loadJournal } from "./embedded-journal.js";
import { EmbeddedLedgerState } from "./embedded-state.js";
import {
  bucketStart,
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
  type UsageLedger,
  type UsageQuery,
  type UsageReport,
  windowEdges,
} from "./ledger.js";
import { addCounts, countsFrom, countsOf, OUTCOME_CODE, outcomesOf, paidOf } from "./outcomes.js";

/**
 * The in-process ledger for a single machine (no Redis): the same semantics
 * as the Redis ledger (rolling window, tiers, idempotency, retention) and the
 * same contract test suite.
 *
 * # Persistence
 *
 * State lives in memory (embedded-state.ts) and in one journal file
 * of JSON lines, so a router restart keeps it; embedded-journal.ts
 * describes the lines and replays and compacts the file. `record()` resolves
 * only after its lines were written to the file (they survive a process
 * crash); the file is fsynced every `fsyncIntervalMs` and on `close()`, so a
 * power loss costs at most that interval. A torn last line (crash mid-write)
 * is dropped on load; other unreadable lines are skipped and counted in
 * `corruptLines`. The journal is compacted (rewritten to a temporary file,
 * fsynced, renamed over the old one) on open and whenever it holds twice as
 * many lines as live records: expired buckets and ids disappear then.
 *
 * # Idempotency
 *
 * As in Redis (router/ledger/lua/record.lua): an event with origin/seq marks
 * bit `seq % 65536` of an 8 KiB bitmap per (miner, origin, floor(seq /
 * 65536)); the bitmap lives until the newest event marked in it can no
 * longer count (its bucket start + `dedupeTtlMs`). Events without them are
 * remembered by request id. Expired markers are pruned with the buckets.
 *
 * One process owns the file. `tensorclaw router tiers` only appends tier
 * lines to it (`appendTierLine` in embedded-tiers.ts) and never
 * compacts, so it cannot trim data under another retention setting; a running
 * router applies such lines when it next opens the file (restart).
 */

/** Options of the embedded ledger. */
export interface EmbeddedLedgerOptions extends LedgerOptions {
  /** Journal file; undefined keeps everything in memory only. */
  readonly path?: string | undefined;
  /** Clock used on open (to trim what expired while the router was down). */
  readonly nowMs: number;
  /** How often written lines are fsynced (default {@link DEFAULT_FSYNC_INTERVAL_MS}). */
  readonly fsyncIntervalMs?: number;
}

/** How often the journal's written lines are fsynced, unless told otherwise. */
export const DEFAULT_FSYNC_INTERVAL_MS = 1000;

/** Lines a compaction may leave before the next one is due. */
const MIN_COMPACT_LINES = 50_000;

/** The embedded, file-backed usage ledger. Open it with `EmbeddedLedger.open`. */
export class EmbeddedLedger implements UsageLedger {
  readonly options: LedgerOptions;
  /** Unreadable journal lines skipped on open. */
  corruptLines = 0;
  readonly #state: EmbeddedLedgerState;
  readonly #path: string | undefined;
  #file: FileHandle | undefined;
  #io: Promise<void> = Promise.resolve();
  #lines = 0;
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;

  private constructor(options: EmbeddedLedgerOptions) {
    this.options = checkLedgerOptions(options);
    this.#state = new EmbeddedLedgerState(this.options);
    this.#path = options.path;
  }

  /** Opens (creating if needed) the ledger and its journal. */
  static async open(options: EmbeddedLedgerOptions): Promise<EmbeddedLedger> {
    const ledger = new EmbeddedLedger(options);
    if (options.path !== undefined) {
      await mkdir(dirname(options.path), { recursive: true });
      ledger.corruptLines = await loadJournal(options.path, ledger.#state, options.nowMs);
      await ledger.#compact(options.nowMs);
      ledger.#file = await open(options.path, "a");
      const every = options.fsyncIntervalMs ?? DEFAULT_FSYNC_INTERVAL_MS;
      ledger.#timer = setInterval(() => ledger.#sync(), every);
      ledger.#timer.unref();
    }
    return ledger;
  }

  async record(events: readonly UsageEvent[], nowMs: number): Promise<RecordResult> {
    const result = emptyResult();
    const cutoff = retentionCutoff(nowMs, this.options);
    const ttl = dedupeTtlMs(this.options);
    const lines: string[] = [];
    for (const e of events) {
      if (!isValidEvent(e)) {
        result.invalid++;
        continue;
      }
      const b = bucketStart(Math.min(e.finishedAtMs, nowMs), this.options.bucketMs);
      if (b < cutoff) {
        result.expired++;
        continue;
      }
      const line: unknown[] = [
        e.minerHotkey,
        e.model,
        e.requestId,
        b,
        e.promptTokens,
        e.completionTokens,
        nowMs,
      ];
      if (hasSeq(e)) {
        // Like the Redis bitmap: kept until the newest marked event's bucket can no longer count.
        const exp = bucketStart(e.finishedAtMs, this.options.bucketMs) + ttl;
        if (!this.#state.mark(e.minerHotkey, e.origin, e.seq, exp, nowMs)) {
          result.duplicates++;
          continue;
        }
        line.push(e.origin, e.seq, exp);
      } else {
        const idKey = `${e.minerHotkey}\n${e.requestId}`;
        const exp = this.#state.ids.get(idKey);
        if (exp !== undefined && exp > nowMs) {
          result.duplicates++;
          continue;
        }
        this.#state.ids.delete(idKey);
        this.#state.ids.set(idKey, nowMs + ttl);
      }
      this.#state.add(e.minerHotkey, e.model, b, countsOf(e), cutoff);
      lines.push(
        JSON.stringify(
          e.paid === true
            ? { e: line, o: OUTCOME_CODE[e.outcome], p: 1 }
            : { e: line, o: OUTCOME_CODE[e.outcome] },
        ),
      );
      result.counted++;
    }
    if (lines.length > 0) await this.#append(lines, nowMs);
    return result;
  }

  async usage(query: UsageQuery): Promise<UsageReport> {
    checkWindow(query.windowMs, this.options);
    const { nowMs } = query;
    this.#state.trimAll(nowMs);
    const { startMs, endMs } = windowEdges(nowMs, query.windowMs, this.options.bucketMs);
    const wanted =
      query.hotkeys !== undefined && query.hotkeys.length > 0 ? new Set(query.hotkeys) : undefined;
    const rows: RawCounts[] = [];
    for (const [hotkey, models] of this.#state.cells) {
      if (wanted !== undefined && !wanted.has(hotkey)) continue;
      for (const [model, cell] of models) {
        const sum = countsFrom([]);
        for (const [b, t] of cell.buckets) if (b >= startMs && b < endMs) addCounts(sum, t);
        const [p, c, r] = sum;
        rows.push({
          hotkey,
          model,
          promptTokens: p,
          completionTokens: c,
          ...paidOf(sum),
          requests: r,
          outcomes: outcomesOf(sum),
        });
      }
    }
    return buildReport(rows, this.#state.tiers, nowMs, query.windowMs, this.options, {
      countFreeTraffic: query.countFreeTraffic === true,
    });
  }

  async setTier(model: string, multiplier: number, nowMs: number): Promise<void> {
    checkModelId(model);
    checkMultiplier(multiplier);
    this.#state.tiers.set(model, multiplier);
    await this.#append([JSON.stringify({ t: [model, multiplier, nowMs] })], nowMs);
  }

  async removeTier(model: string, nowMs: number): Promise<boolean> {
    checkModelId(model);
    if (!this.#state.tiers.delete(model)) return false;
    await this.#append([JSON.stringify({ t: [model, null, nowMs] })], nowMs);
    return true;
  }

  async tiers(): Promise<ReadonlyMap<string, number>> {
    return new Map([...this.#state.tiers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  async close(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    const file = this.#file;
    this.#file = undefined;
    await this.#io;
    if (file !== undefined) {
      await file.sync();
      await file.close();
    }
  }

  #append(lines: readonly string[], nowMs: number): Promise<void> {
    if (this.#path === undefined) return Promise.resolve();
    const text = `${lines.join("\n")}\n`;
    const step = this.#io.then(async () => {
      const file = this.#file;
      if (file === undefined) throw new Error("embedded ledger is closed");
      await file.write(text);
      this.#dirty = true;
      this.#lines += lines.length;
      if (this.#lines > Math.max(MIN_COMPACT_LINES, 2 * this.#state.liveRecords())) {
        this.#state.trimAll(nowMs);
        await file.sync();
        await file.close();
        await this.#compact(nowMs);
        this.#file = await open(this.#path as string, "a");
      }
    });
    // Keep the chain alive after a failure; the caller still sees it.
    this.#io = step.catch(() => {});
    return step;
  }

  #sync(): void {
    if (!this.#dirty || this.#file === undefined) return;
    this.#dirty = false;
    const file = this.#file;
    this.#io = this.#io.then(() => file.sync()).catch(() => {});
  }

  /** Rewrites the journal with only live records (atomic: temp file, fsync, rename). */
  async #compact(nowMs: number): Promise<void> {
    const path = this.#path;
    if (path === undefined) return;
    await compactJournal(path, this.#state, nowMs);
    this.#lines = this.#state.liveRecords();
  }
}
