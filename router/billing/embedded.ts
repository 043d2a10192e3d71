import type { FileHandle } from "node:fs/promises";
import { mkdir, open, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { TensorClawError } from "../../common/errors.js";
import { checkLedgerOptions, DEFAULT_LEDGER_OPTIONS, type LedgerOptions } from "../ledger/ledger.js";
import type { UsageEvent } from "../usage/event.js";
import { buildAccountView, dailyFromRows } from "./account-view.js";
import {
  type AccountSettings,
  type AccountView,
  type BillingStore,
  type CreditEntry,
  checkGenerationRetention,
  type DaySpend,
  type GenerationRecord,
  type HoldRequest,
  type HoldResult,
  oldestKeptDay,
  type SettleResult,
} from "./billing.js";
import {
  checkCreditEntry,
  checkCursor,
  checkHold,
  checkKeyId,
  checkSettings,
  isId,
  isKeyId,
  type SettleItem,
  settleItem,
} from "./check.js";
import {
  appendBillingLines,
  appendLocked,
  appendWhole,
  applyChunk,
  compactBillingJournal,
  configureLine,
  creditLine,
  cursorLine,
  loadBillingJournal,
  settleLine,
  withJournalLock,
} from "./embedded-journal.js";
import { BillingState } from "./embedded-state.js";

/**
 * The in-process billing store for a single machine (no Redis): the same
 * semantics as `RedisBilling` and the same contract test suite.
 *
 * # Persistence
 *
 * State lives in memory (embedded-state.ts) and in one journal file of JSON
 * lines (embedded-journal.ts describes them). A change resolves once its
 * lines are written to the file (they survive a process crash); the file is
 * fsynced every `fsyncIntervalMs` and on `close()`, so a power loss costs at
 * most that interval. A torn last line is dropped on load; other unreadable
 * lines are skipped and counted in `corruptLines`. The journal is compacted
 * on open and whenever it holds twice as many lines as live records.
 *
 * Holds live in memory only: they belong to the requests in flight in this
 * process, which die with it, so after a restart no funds stay locked.
 *
 * # Other writers
 *
 * The CLI (`tensorclaw keys create --credits`, `keys credit`) runs as a
 * separate process while the router runs. It appends account settings and
 * credit entries to the same file with `EmbeddedBilling.configureOffline`
 * and `creditOffline`. Every writer appends, and a store compacts, only while
 * holding the journal's lock file; before writing, a store first applies
 * the lines others appended since it last looked. Stores also look at the
 * file on reads, at most once per `refreshIntervalMs` (default 1 s), so a
 * credit added by the CLI is usable within about a second; entry ids keep
 * each credit exactly once. A compaction by another store on the same file
 * replaces it: a store that sees a new file reloads it (keeping its holds).
 */

/** Options of the embedded billing store. */
export interface EmbeddedBillingOptions extends LedgerOptions {
  /** Journal file; undefined keeps everything in memory only. */
  readonly path?: string | undefined;
  /** Clock used on open (to trim what expired while the router was down). */
  readonly nowMs: number;
  /** How long generation records are kept (`--generation-retention-s`; default 30 days). */
  readonly generationRetentionMs?: number;
  /** How often written lines are fsynced (default {@link DEFAULT_BILLING_FSYNC_INTERVAL_MS}). */
  readonly fsyncIntervalMs?: number;
  /** Reads look for lines other processes appended at most this often (default {@link DEFAULT_REFRESH_INTERVAL_MS}). */
  readonly refreshIntervalMs?: number;
}

/** How often the journal's written lines are fsynced, unless told otherwise. */
export const DEFAULT_BILLING_FSYNC_INTERVAL_MS = 1000;
/** How often reads look for lines other processes appended, unless told otherwise. */
export const DEFAULT_REFRESH_INTERVAL_MS = 1000;
/** Default journal file of the embedded billing store. */
export const DEFAULT_EMBEDDED_BILLING_FILE = ".tensorclaw/billing.jsonl";

/** Lines a compaction may leave before the next one is due. */
const MIN_COMPACT_LINES = 50_000;
/** Buckets, days and records that expired are dropped from memory at most this often (store clock). */
const TRIM_EVERY_MS = 60_000;

/** The embedded, file-backed billing store. Open it with `EmbeddedBilling.open`. */
export class EmbeddedBilling implements BillingStore {
  readonly options: LedgerOptions;
  /** Unreadable journal lines skipped (on open and in lines read since). */
  corruptLines = 0;
  #state: BillingState;
  readonly #path: string | undefined;
  readonly #refreshMs: number;
  readonly #retentionMs: number;
  #file: FileHandle | undefined;
  #ino = 0;
  /** Bytes of the file applied to the state. */
  #offset = 0;
  #io: Promise<void> = Promise.resolve();
  #lines = 0;
  #dirty = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  #lastLookMs = Number.NEGATIVE_INFINITY;
  #lastTrimMs = Number.NEGATIVE_INFINITY;
  #nowMs: number;

  private constructor(options: EmbeddedBillingOptions) {
    this.options = checkLedgerOptions(options);
    this.#retentionMs = checkGenerationRetention(options.generationRetentionMs);
    this.#state = new BillingState(this.options);
    this.#path = options.path;
    this.#refreshMs = options.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS;
    this.#nowMs = options.nowMs;
  }

  /** Opens (creating if needed) the store and its journal. */
  static async open(options: EmbeddedBillingOptions): Promise<EmbeddedBilling> {
    const store = new EmbeddedBilling(options);
    const path = options.path;
    if (path !== undefined) {
      await mkdir(dirname(path), { recursive: true });
      await withJournalLock(path, async () => {
        store.corruptLines = await loadBillingJournal(path, store.#state);
        await store.#compactLocked(options.nowMs);
      });
      const every = options.fsyncIntervalMs ?? DEFAULT_BILLING_FSYNC_INTERVAL_MS;
      store.#timer = setInterval(() => store.#sync(), every);
      store.#timer.unref();
    }
    return store;
  }

  /** Sets a key's account settings in the journal at `path` from another process (the CLI). */
  static async configureOffline(
    path: string,
    keyId: string,
    settings: AccountSettings,
    nowMs: number,
  ): Promise<void> {
    checkKeyId(keyId);
    const s = checkSettings(settings);
    await mkdir(dirname(path), { recursive: true });
    await appendBillingLines(path, [configureLine(keyId, s, nowMs)]);
  }

  /**
   * Appends a credit entry to the journal at `path` from another process
   * (the CLI); false when an entry with its id is already there.
   */
  static async creditOffline(path: string, entry: CreditEntry): Promise<boolean> {
    const e = checkCreditEntry(entry);
    await mkdir(dirname(path), { recursive: true });
    return withJournalLock(path, async () => {
      const state = new BillingState(DEFAULT_LEDGER_OPTIONS);
      await loadBillingJournal(path, state);
      if (state.accounts.get(e.keyId)?.entryIds.has(e.id) === true) return false;
      await appendLocked(path, [creditLine(e)]);
      return true;
    });
  }

  async configure(keyId: string, settings: AccountSettings, nowMs: number): Promise<void> {
    checkKeyId(keyId);
    const s = checkSettings(settings);
    await this.#change(nowMs, (state) => {
      state.configure(keyId, s);
      return { lines: [configureLine(keyId, s, nowMs)], result: undefined };
    });
  }

  async settings(keyId: string): Promise<AccountSettings | undefined> {
    await this.#look();
    return this.#state.accounts.get(keyId)?.settings;
  }

  async credit(entry: CreditEntry): Promise<boolean> {
    const e = checkCreditEntry(entry);
    return this.#change(this.#nowMs, (state) => {
      const applied = state.credit(e);
      return { lines: applied ? [creditLine(e)] : [], result: applied };
    });
  }

  async hold(h: HoldRequest): Promise<HoldResult> {
    checkHold(h);
    this.#nowMs = Math.max(this.#nowMs, h.nowMs);
    await this.#look();
    // Synchronous from here: concurrent holds see each other.
    return this.#state.hold(h);
  }

  async release(keyId: string, requestId: string, _nowMs: number): Promise<void> {
    if (!isKeyId(keyId) || !isId(requestId)) return;
    this.#state.release(keyId, requestId);
  }

  async settle(events: readonly UsageEvent[], nowMs: number): Promise<SettleResult> {
    const result: SettleResult = { settled: 0, duplicates: 0, ignored: 0 };
    const items: SettleItem[] = [];
    for (const e of events) {
      const item = settleItem(e, nowMs, this.#retentionMs);
      if (item === undefined) result.ignored++;
      else items.push(item);
    }
    if (items.length === 0) return result;
    return this.#change(nowMs, (state) => {
      const lines: string[] = [];
      for (const item of items) {
        if (state.isSettled(item.keyId, item.requestId, nowMs)) {
          result.duplicates++;
          continue;
        }
        const charged = state.chargeOf(item);
        state.settle(item, charged, nowMs);
        lines.push(settleLine(item, charged));
        result.settled++;
      }
      if (nowMs - this.#lastTrimMs >= TRIM_EVERY_MS) {
        this.#lastTrimMs = nowMs;
        state.trimAll(nowMs);
      }
      return { lines, result };
    });
  }

  async account(keyId: string, nowMs: number): Promise<AccountView> {
    checkKeyId(keyId);
    await this.#look();
    return buildAccountView(this.#state.raw(keyId, nowMs), nowMs, this.options);
  }

  async daily(keyId: string, nowMs: number): Promise<DaySpend[]> {
    checkKeyId(keyId);
    await this.#look();
    const a = this.#state.accounts.get(keyId);
    return a === undefined ? [] : dailyFromRows(this.#state.dayRows(a, oldestKeptDay(nowMs)), nowMs);
  }

  async generation(keyId: string, requestId: string, nowMs: number): Promise<GenerationRecord | undefined> {
    await this.#look();
    const g = this.#state.generations.get(`${keyId}\n${requestId}`);
    return g !== undefined && g.expiresAtMs > nowMs ? g.record : undefined;
  }

  async recentGenerations(keyId: string, limit: number, nowMs: number): Promise<GenerationRecord[]> {
    await this.#look();
    return this.#state.recent.list(keyId, limit, nowMs);
  }

  async entries(keyId: string, limit: number): Promise<CreditEntry[]> {
    checkKeyId(keyId);
    await this.#look();
    const all = this.#state.accounts.get(keyId)?.entries ?? [];
    const n = Math.max(0, Math.min(Math.floor(limit), all.length));
    return all.slice(all.length - n).reverse();
  }

  async cursor(name: string): Promise<string | undefined> {
    checkCursor(name);
    await this.#look();
    return this.#state.cursors.get(name);
  }

  async setCursor(name: string, value: string): Promise<void> {
    checkCursor(name, value);
    await this.#change(this.#nowMs, (state) => {
      state.cursors.set(name, value);
      return { lines: [cursorLine(name, value)], result: undefined };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#io;
    const file = this.#file;
    this.#file = undefined;
    if (file !== undefined) {
      await file.sync();
      await file.close();
    }
  }

  /**
   * Runs a change: under the journal lock, after applying what others
   * appended, so the decision sees the whole file; then writes its lines.
   */
  #change<T>(nowMs: number, fn: (state: BillingState) => { lines: string[]; result: T }): Promise<T> {
    if (this.#closed) return Promise.reject(new TensorClawError("unavailable", "billing store is closed"));
    this.#nowMs = Math.max(this.#nowMs, nowMs);
    const path = this.#path;
    if (path === undefined) return Promise.resolve(fn(this.#state).result);
    return this.#serial(() =>
      withJournalLock(path, async () => {
        await this.#catchUp(true);
        const { lines, result } = fn(this.#state);
        if (lines.length > 0) {
          const file = this.#file as FileHandle;
          this.#offset = await appendWhole(file, lines);
          this.#dirty = true;
          this.#lines += lines.length;
          if (this.#lines > Math.max(MIN_COMPACT_LINES, 2 * this.#state.liveRecords())) {
            await this.#compactLocked(this.#nowMs);
          }
        }
        return result;
      }),
    );
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const step = this.#io.then(fn);
    // Keep the chain alive after a failure; the caller still sees it.
    this.#io = step.then(
      () => {},
      () => {},
    );
    return step;
  }

  /** On reads: applies lines other processes appended, at most once per refresh interval. */
  async #look(): Promise<void> {
    if (this.#path === undefined || this.#closed) return;
    const t = performance.now();
    if (t - this.#lastLookMs < this.#refreshMs) return;
    this.#lastLookMs = t;
    await this.#serial(() => this.#catchUp(false));
  }

  /**
   * Applies the journal's new lines. A replaced file (another store
   * compacted) is reloaded whole. With the lock held, a partial last line
   * can only be a crashed writer's: the next append terminates it.
   */
  async #catchUp(locked: boolean): Promise<void> {
    const path = this.#path as string;
    const file = this.#file;
    if (file === undefined) return;
    const now = await stat(path).catch(() => undefined);
    if (now === undefined) return;
    if (now.ino !== this.#ino || now.size < this.#offset) {
      await this.#reload();
      return;
    }
    if (now.size === this.#offset) return;
    const buf = Buffer.alloc(now.size - this.#offset);
    const { bytesRead } = await file.read(buf, 0, buf.length, this.#offset);
    const { consumed, corrupt } = applyChunk(this.#state, buf.subarray(0, bytesRead));
    this.#offset += consumed;
    this.#lines += corrupt;
    this.corruptLines += corrupt;
    if (locked && consumed < bytesRead) this.corruptLines++;
  }

  /** Loads the file afresh (it was replaced), keeping this process's holds. */
  async #reload(): Promise<void> {
    const path = this.#path as string;
    const old = this.#state;
    const fresh = new BillingState(this.options);
    this.corruptLines += await loadBillingJournal(path, fresh);
    for (const [keyId, a] of old.accounts) {
      for (const [id, h] of a.holds) fresh.account(keyId).holds.set(id, h);
    }
    fresh.trimAll(this.#nowMs);
    this.#state = fresh;
    await this.#reopen();
    this.#lines = fresh.liveRecords();
  }

  /** (Re)opens the journal handle and records its inode and size. */
  async #reopen(): Promise<void> {
    const path = this.#path as string;
    const old = this.#file;
    this.#file = undefined;
    if (old !== undefined) {
      await old.sync().catch(() => {});
      await old.close().catch(() => {});
    }
    const file = await open(path, "a+");
    const st = await file.stat();
    this.#file = file;
    this.#ino = st.ino;
    // Whole lines only: a torn tail stays unapplied.
    const size = st.size;
    if (size > 0) {
      const last = Buffer.alloc(1);
      await file.read(last, 0, 1, size - 1);
      this.#offset = last[0] === 10 ? size : await lastLineEnd(file, size);
    } else {
      this.#offset = 0;
    }
  }

  /** Rewrites the journal with live records only and reopens it. Call with the lock held. */
  async #compactLocked(nowMs: number): Promise<void> {
    const path = this.#path as string;
    await compactBillingJournal(path, this.#state, nowMs);
    await this.#reopen();
    this.#lines = this.#state.liveRecords();
    this.#dirty = false;
  }

  #sync(): void {
    if (!this.#dirty || this.#file === undefined) return;
    this.#dirty = false;
    const file = this.#file;
    void this.#serial(() => file.sync()).catch(() => {});
  }
}

/** The offset just past the last newline of the file's first `size` bytes (0 when none). */
async function lastLineEnd(file: FileHandle, size: number): Promise<number> {
  const buf = Buffer.alloc(Math.min(size, 1 << 20));
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - buf.length);
    const { bytesRead } = await file.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(10);
    if (nl !== -1) return start + nl + 1;
    end = start;
  }
  return 0;
}
