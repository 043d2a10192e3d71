import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
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
  ORIGIN_PATTERN,
  type RawCounts,
  type RecordResult,
  retentionCutoff,
  SEEN_CHUNK_BITS,
  seenSlot,
  type UsageLedger,
  type UsageQuery,
  type UsageReport,
  windowEdges,
} from "./ledger.js";
import type { UsageEvent } from "./usage-event.js";

/**
 * The in-process ledger for a single machine (no Redis): the same semantics
 * as the Redis ledger (rolling window, tiers, idempotency, retention) and the
 * same contract test suite.
 *
 * # Persistence
 *
 * State lives in memory and in one journal file of JSON lines, so a router
 * restart keeps it:
 *
 * - `{"e":[hotkey, model, requestId, bucketStart, prompt, completion, recordedAtMs]}` one counted event
 *   without origin/seq; with them, three more elements: `origin, seq, markerExpiresAtMs`
 * - `{"b":[hotkey, model, bucketStart, prompt, completion, requests]}` an aggregated bucket (from compaction)
 * - `{"i":[hotkey, requestId, expiresAtMs]}` a remembered request id (from compaction)
 * - `{"s":[hotkey, origin, chunk, expiresAtMs, base64 bitmap]}` a seen-bitmap chunk (from compaction)
 * - `{"t":[model, multiplier or null, atMs]}` a tier change
 *
 * Lines are additive, so loading replays them in order. `record()` resolves
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
 * As in Redis (router/lua/ledger-record.lua): an event with origin/seq marks
 * bit `seq % 65536` of an 8 KiB bitmap per (miner, origin, floor(seq /
 * 65536)); the bitmap lives until the newest event marked in it can no
 * longer count (its bucket start + `dedupeTtlMs`). Events without them are
 * remembered by request id. Expired markers are pruned with the buckets.
 *
 * One process owns the file. `tensorclaw router tiers` only appends tier
 * lines to it (`appendTierLine`) and never compacts, so it cannot trim data
 * under another retention setting; a running router applies such lines when
 * it next opens the file (restart).
 */

/** Default journal file of the embedded ledger. */
export const DEFAULT_EMBEDDED_LEDGER_FILE = ".tensorclaw/ledger.jsonl";

/**
 * Appends one tier change to a journal file (creating it), fsynced. The
 * multiplier `null` removes the entry.
 */
export async function appendTierLine(
  path: string,
  model: string,
  multiplier: number | null,
  nowMs: number,
): Promise<void> {
  checkModelId(model);
  if (multiplier !== null) checkMultiplier(multiplier);
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, "a");
  try {
    // A torn last line from a crashed writer must not swallow this one.
    const size = (await fh.stat()).size;
    let lead = "";
    if (size > 0) {
      const last = Buffer.alloc(1);
      const probe = await open(path, "r");
      try {
        await probe.read(last, 0, 1, size - 1);
      } finally {
        await probe.close();
      }
      if (last[0] !== 10) lead = "\n";
    }
    await fh.write(`${lead}${JSON.stringify({ t: [model, multiplier, nowMs] })}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The tier map recorded in a journal file (empty when the file does not exist). */
export async function readTierLines(path: string): Promise<Map<string, number>> {
  const tiers = new Map<string, number>();
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return tiers;
    throw err;
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith('{"t":')) continue;
    try {
      const [model, mult] = (JSON.parse(line) as { t: unknown[] }).t;
      if (typeof model !== "string") continue;
      if (mult === null) tiers.delete(model);
      else if (typeof mult === "number" && Number.isFinite(mult) && mult >= 0) tiers.set(model, mult);
    } catch {
      // A torn or corrupt line: the ledger skips it too.
    }
  }
  return new Map([...tiers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

type Triple = [prompt: number, completion: number, requests: number];

/** One chunk of seen (origin, seq) markers of a miner. */
interface SeenChunk {
  readonly bits: Uint8Array;
  /** Forgotten at this time (the clock of `record`). */
  expiresAtMs: number;
}

interface Cell {
  /** Bucket start → counts. */
  readonly buckets: Map<number, Triple>;
}

/** Options of the embedded ledger. */
export interface EmbeddedLedgerOptions extends LedgerOptions {
  /** Journal file; undefined keeps everything in memory only. */
  readonly path?: string | undefined;
  /** Clock used on open (to trim what expired while the router was down). */
  readonly nowMs: number;
  /** How often written lines are fsynced (default 1000). */
  readonly fsyncIntervalMs?: number;
}

/** Lines a compaction may leave before the next one is due. */
const MIN_COMPACT_LINES = 50_000;

/** The embedded, file-backed usage ledger. Open it with `EmbeddedLedger.open`. */
export class EmbeddedLedger implements UsageLedger {
  readonly options: LedgerOptions;
  /** Unreadable journal lines skipped on open. */
  corruptLines = 0;
  readonly #cells = new Map<string, Map<string, Cell>>();
  /** `hotkey \n requestId` → expiry (insertion order is expiry order: the clock only moves on). */
  readonly #ids = new Map<string, number>();
  /** `hotkey \n origin \n chunk` → bitmap of counted seq values. */
  readonly #seen = new Map<string, SeenChunk>();
  readonly #tiers = new Map<string, number>();
  readonly #path: string | undefined;
  #file: FileHandle | undefined;
  #io: Promise<void> = Promise.resolve();
  #lines = 0;
  #dirty = false;
  #timer: NodeJS.Timeout | undefined;

  private constructor(options: EmbeddedLedgerOptions) {
    this.options = checkLedgerOptions(options);
    this.#path = options.path;
  }

  /** Opens (creating if needed) the ledger and its journal. */
  static async open(options: EmbeddedLedgerOptions): Promise<EmbeddedLedger> {
    const ledger = new EmbeddedLedger(options);
    if (options.path !== undefined) {
      await mkdir(dirname(options.path), { recursive: true });
      await ledger.#load(options.path, options.nowMs);
      await ledger.#compact(options.nowMs);
      ledger.#file = await open(options.path, "a");
      const every = options.fsyncIntervalMs ?? 1000;
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
        if (!this.#mark(e.minerHotkey, e.origin, e.seq, exp, nowMs)) {
          result.duplicates++;
          continue;
        }
        line.push(e.origin, e.seq, exp);
      } else {
        const idKey = `${e.minerHotkey}\n${e.requestId}`;
        const exp = this.#ids.get(idKey);
        if (exp !== undefined && exp > nowMs) {
          result.duplicates++;
          continue;
        }
        this.#ids.delete(idKey);
        this.#ids.set(idKey, nowMs + ttl);
      }
      this.#add(e.minerHotkey, e.model, b, e.promptTokens, e.completionTokens, 1, cutoff);
      lines.push(JSON.stringify({ e: line }));
      result.counted++;
    }
    if (lines.length > 0) await this.#append(lines, nowMs);
    return result;
  }

  async usage(query: UsageQuery): Promise<UsageReport> {
    checkWindow(query.windowMs, this.options);
    const { nowMs } = query;
    this.#trimAll(nowMs);
    const { startMs, endMs } = windowEdges(nowMs, query.windowMs, this.options.bucketMs);
    const wanted =
      query.hotkeys !== undefined && query.hotkeys.length > 0 ? new Set(query.hotkeys) : undefined;
    const rows: RawCounts[] = [];
    for (const [hotkey, models] of this.#cells) {
      if (wanted !== undefined && !wanted.has(hotkey)) continue;
      for (const [model, cell] of models) {
        let p = 0;
        let c = 0;
        let r = 0;
        for (const [b, t] of cell.buckets) {
          if (b < startMs || b >= endMs) continue;
          p += t[0];
          c += t[1];
          r += t[2];
        }
        rows.push({ hotkey, model, promptTokens: p, completionTokens: c, requests: r });
      }
    }
    return buildReport(rows, this.#tiers, nowMs, query.windowMs, this.options);
  }

  async setTier(model: string, multiplier: number, nowMs: number): Promise<void> {
    checkModelId(model);
    checkMultiplier(multiplier);
    this.#tiers.set(model, multiplier);
    await this.#append([JSON.stringify({ t: [model, multiplier, nowMs] })], nowMs);
  }

  async removeTier(model: string, nowMs: number): Promise<boolean> {
    checkModelId(model);
    if (!this.#tiers.delete(model)) return false;
    await this.#append([JSON.stringify({ t: [model, null, nowMs] })], nowMs);
    return true;
  }

  async tiers(): Promise<ReadonlyMap<string, number>> {
    return new Map([...this.#tiers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
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

  #add(hk: string, model: string, b: number, p: number, c: number, r: number, cutoff: number): void {
    let models = this.#cells.get(hk);
    if (models === undefined) {
      models = new Map();
      this.#cells.set(hk, models);
    }
    let cell = models.get(model);
    if (cell === undefined) {
      cell = { buckets: new Map() };
      models.set(model, cell);
    }
    const t = cell.buckets.get(b);
    if (t !== undefined) {
      t[0] += p;
      t[1] += c;
      t[2] += r;
      return;
    }
    cell.buckets.set(b, [p, c, r]);
    // Like the Redis script: a new bucket is the moment to drop expired ones.
    for (const old of cell.buckets.keys()) if (old < cutoff) cell.buckets.delete(old);
  }

  /**
   * Marks (origin, seq) of a miner as counted, keeping its chunk until at
   * least `expiresAtMs`. False when it was already marked (a live marker).
   */
  #mark(hk: string, origin: string, seq: number, expiresAtMs: number, nowMs: number): boolean {
    const { chunk, bit } = seenSlot(seq);
    const c = this.#seenChunk(hk, origin, chunk, expiresAtMs, nowMs);
    const mask = 1 << (bit & 7);
    const at = bit >> 3;
    const old = c.bits[at] ?? 0;
    if ((old & mask) !== 0) return false;
    c.bits[at] = old | mask;
    if (c.expiresAtMs < expiresAtMs) c.expiresAtMs = expiresAtMs;
    return true;
  }

  /**
   * The live bitmap chunk of (miner, origin, chunk); a new empty one,
   * expiring at `expiresAtMs`, when it is absent or expired at `nowMs`.
   */
  #seenChunk(hk: string, origin: string, chunk: number, expiresAtMs: number, nowMs: number): SeenChunk {
    const key = `${hk}\n${origin}\n${chunk}`;
    let c = this.#seen.get(key);
    if (c === undefined || c.expiresAtMs <= nowMs) {
      c = { bits: new Uint8Array(SEEN_CHUNK_BITS / 8), expiresAtMs };
      this.#seen.set(key, c);
    }
    return c;
  }

  #trimAll(nowMs: number): void {
    const cutoff = retentionCutoff(nowMs, this.options);
    for (const [hk, models] of this.#cells) {
      for (const [model, cell] of models) {
        for (const b of cell.buckets.keys()) if (b < cutoff) cell.buckets.delete(b);
        if (cell.buckets.size === 0) models.delete(model);
      }
      if (models.size === 0) this.#cells.delete(hk);
    }
    for (const [key, exp] of this.#ids) {
      if (exp > nowMs) break;
      this.#ids.delete(key);
    }
    // Few chunks (one per 65,536 events of a miner), so a full scan is cheap.
    for (const [key, c] of this.#seen) if (c.expiresAtMs <= nowMs) this.#seen.delete(key);
  }

  #liveRecords(): number {
    let n = this.#ids.size + this.#seen.size + this.#tiers.size;
    for (const models of this.#cells.values()) for (const cell of models.values()) n += cell.buckets.size;
    return n;
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
      if (this.#lines > Math.max(MIN_COMPACT_LINES, 2 * this.#liveRecords())) {
        this.#trimAll(nowMs);
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

  async #load(path: string, nowMs: number): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
      throw err;
    }
    const ttl = dedupeTtlMs(this.options);
    const lines = text.split("\n");
    // The last element is "" after a clean final newline, else a torn line.
    lines.pop();
    for (const line of lines) {
      if (!this.#applyLine(line, ttl)) this.corruptLines++;
    }
    this.#trimAll(nowMs);
  }

  #applyLine(line: string, ttl: number): boolean {
    let doc: unknown;
    try {
      doc = JSON.parse(line);
    } catch {
      return false;
    }
    if (typeof doc !== "object" || doc === null) return false;
    const rec = doc as Record<string, unknown>;
    const num = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
    const str = (v: unknown): v is string => typeof v === "string" && v.length > 0;
    if (Array.isArray(rec.e)) {
      const [hk, model, id, b, p, c, at, origin, seq, exp] = rec.e as unknown[];
      if (!str(hk) || !str(model) || !str(id) || !num(b) || !num(p) || !num(c) || !num(at)) return false;
      if (origin !== undefined) {
        if (typeof origin !== "string" || !ORIGIN_PATTERN.test(origin) || !num(seq) || !num(exp))
          return false;
        this.#mark(hk, origin, seq, exp, Number.NEGATIVE_INFINITY);
      } else {
        this.#ids.delete(`${hk}\n${id}`);
        this.#ids.set(`${hk}\n${id}`, at + ttl);
      }
      this.#add(hk, model, b, p, c, 1, Number.NEGATIVE_INFINITY);
      return true;
    }
    if (Array.isArray(rec.s)) {
      const [hk, origin, chunk, exp, bits] = rec.s as unknown[];
      if (!str(hk) || typeof origin !== "string" || !ORIGIN_PATTERN.test(origin)) return false;
      if (!num(chunk) || !num(exp) || typeof bits !== "string") return false;
      const raw = Buffer.from(bits, "base64");
      if (raw.length > SEEN_CHUNK_BITS / 8) return false;
      const cur = this.#seenChunk(hk, origin, chunk, exp, Number.NEGATIVE_INFINITY);
      for (let i = 0; i < raw.length; i++) cur.bits[i] = (cur.bits[i] ?? 0) | (raw[i] ?? 0);
      if (cur.expiresAtMs < exp) cur.expiresAtMs = exp;
      return true;
    }
    if (Array.isArray(rec.b)) {
      const [hk, model, b, p, c, r] = rec.b as unknown[];
      if (!str(hk) || !str(model) || !num(b) || !num(p) || !num(c) || !num(r)) return false;
      this.#add(hk, model, b, p, c, r, Number.NEGATIVE_INFINITY);
      return true;
    }
    if (Array.isArray(rec.i)) {
      const [hk, id, exp] = rec.i as unknown[];
      if (!str(hk) || !str(id) || !num(exp)) return false;
      this.#ids.set(`${hk}\n${id}`, exp);
      return true;
    }
    if (Array.isArray(rec.t)) {
      const [model, mult] = rec.t as unknown[];
      if (!str(model)) return false;
      if (mult === null) this.#tiers.delete(model);
      else if (typeof mult === "number" && Number.isFinite(mult) && mult >= 0) this.#tiers.set(model, mult);
      else return false;
      return true;
    }
    return false;
  }

  /** Rewrites the journal with only live records (atomic: temp file, fsync, rename). */
  async #compact(nowMs: number): Promise<void> {
    const path = this.#path;
    if (path === undefined) return;
    this.#trimAll(nowMs);
    const tmp = `${path}.compact`;
    const out = await open(tmp, "w");
    try {
      const chunk: string[] = [];
      const flush = async () => {
        if (chunk.length === 0) return;
        await out.write(`${chunk.join("\n")}\n`);
        chunk.length = 0;
      };
      for (const [model, mult] of this.#tiers) chunk.push(JSON.stringify({ t: [model, mult, nowMs] }));
      for (const [hk, models] of this.#cells) {
        for (const [model, cell] of models) {
          for (const [b, [p, c, r]] of cell.buckets) {
            chunk.push(JSON.stringify({ b: [hk, model, b, p, c, r] }));
            if (chunk.length >= 10_000) await flush();
          }
        }
      }
      for (const [key, exp] of this.#ids) {
        const nl = key.indexOf("\n");
        chunk.push(JSON.stringify({ i: [key.slice(0, nl), key.slice(nl + 1), exp] }));
        if (chunk.length >= 10_000) await flush();
      }
      for (const [key, c] of this.#seen) {
        const [hk, origin, n] = key.split("\n");
        // Trailing zero bytes carry nothing: a young chunk stays short.
        let end = c.bits.length;
        while (end > 0 && c.bits[end - 1] === 0) end--;
        const bits = Buffer.from(c.bits.buffer, c.bits.byteOffset, end).toString("base64");
        chunk.push(JSON.stringify({ s: [hk, origin, Number(n), c.expiresAtMs, bits] }));
        if (chunk.length >= 10_000) await flush();
      }
      await flush();
      await out.sync();
    } finally {
      await out.close();
    }
    await rename(tmp, path);
    // Make the rename itself durable.
    const dir = await open(dirname(path), "r");
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
    this.#lines = this.#liveRecords();
  }
}
