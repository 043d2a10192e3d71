import { type FileHandle, mkdir, open, rename } from "node:fs/promises";
import { join } from "node:path";
import { TensorClawError } from "../../common/errors.js";
import { type EventBilling, USAGE_OUTCOMES, type UsageEvent, type UsageOutcome } from "./event.js";

/**
 * A durable, append-only local spool of usage events, used while the ledger
 * (Redis) is unreachable.
 *
 * # Files (in `dir`)
 *
 * - `usage.spool`: one JSON usage event per line, in arrival order. An
 *   event's `origin` and `seq` (its idempotency key, see sequence.ts)
 *   are kept, so a replay by a later process carries the original pair.
 *   Lines without them (written by older routers) still load; the ledger
 *   then deduplicates them by request id. `paid` and `billing` travel too
 *   (billing settles from the replay); a line whose `billing` is malformed
 *   is unreadable, like any other malformed line.
 * - `usage.ack`: the byte offset up to which events were written to the
 *   ledger, replaced atomically (temporary file, fsync, rename).
 *
 * # Durability (fsync policy)
 *
 * `append()` resolves only after its lines are written AND fsynced: an event
 * whose append resolved survives a process crash and a power loss. Appends
 * that arrive while a write is in progress are coalesced into the next write
 * (group commit), so the cost is one fsync per burst, not per event.
 * A crash mid-write can leave a torn last line; it was never acknowledged,
 * and `open()` truncates it away.
 *
 * # Replay
 *
 * `read()` returns events from the acknowledged offset in order; the caller
 * writes them to the ledger and then calls `ack()` with the returned offset.
 * A crash between the ledger write and the ack replays those events again:
 * the ledger is idempotent by (origin, seq) or request id, so nothing is
 * counted twice. When
 * everything is acknowledged the spool is truncated to empty.
 */

/** Options of the spool. */
export interface SpoolOptions {
  /** Folder of the spool files (created if missing). */
  readonly dir: string;
  /** Largest spool file; appends beyond it are refused (default 1 GiB). */
  readonly maxBytes?: number;
}

/** A batch read back from the spool. */
export interface SpoolBatch {
  readonly events: UsageEvent[];
  /** Pass the batch to `ack()` once the events are in the ledger. */
  readonly endOffset: number;
  /** Lines consumed (events plus skipped corrupt lines). */
  readonly lines: number;
}

const SPOOL_FILE = "usage.spool";
const ACK_FILE = "usage.ack";
const READ_CHUNK = 1 << 20;

/** The billing of a spool line, checked field by field; undefined when malformed. */
function billingOf(v: unknown): EventBilling | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const b = v as Record<string, unknown>;
  const whole = (x: unknown): x is number => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
  if (typeof b.keyId !== "string" || !whole(b.costMicros) || !whole(b.holdMicros)) return undefined;
  if (b.ttftMs !== null && !(typeof b.ttftMs === "number" && Number.isFinite(b.ttftMs))) return undefined;
  if (b.finishReason !== null && typeof b.finishReason !== "string") return undefined;
  if (typeof b.streamed !== "boolean") return undefined;
  if (b.holdId !== undefined && typeof b.holdId !== "string") return undefined;
  return {
    keyId: b.keyId,
    costMicros: b.costMicros,
    holdMicros: b.holdMicros,
    ...(b.holdId === undefined ? {} : { holdId: b.holdId }),
    ttftMs: b.ttftMs as number | null,
    finishReason: b.finishReason as string | null,
    streamed: b.streamed,
  };
}

/** Parses one spool line; undefined when it is not a usage event. */
export function parseSpoolLine(line: string): UsageEvent | undefined {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const n = (x: unknown): x is number => typeof x === "number" && Number.isFinite(x);
  const s = (x: unknown): x is string => typeof x === "string";
  if (!s(r.requestId) || !s(r.minerHotkey) || !s(r.model) || !n(r.promptTokens) || !n(r.completionTokens)) {
    return undefined;
  }
  if (!n(r.startedAtMs) || !n(r.finishedAtMs) || !USAGE_OUTCOMES.includes(r.outcome as UsageOutcome))
    return undefined;
  // Both or neither: half a key would be deduplicated by nothing.
  const keyed = r.origin !== undefined || r.seq !== undefined;
  if (keyed && (!s(r.origin) || !n(r.seq))) return undefined;
  if (r.paid !== undefined && typeof r.paid !== "boolean") return undefined;
  const billing = r.billing === undefined ? undefined : billingOf(r.billing);
  if (r.billing !== undefined && billing === undefined) return undefined;
  const base: { -readonly [K in keyof UsageEvent]: UsageEvent[K] } = {
    requestId: r.requestId,
    minerHotkey: r.minerHotkey,
    model: r.model,
    promptTokens: r.promptTokens,
    completionTokens: r.completionTokens,
    outcome: r.outcome as UsageOutcome,
    startedAtMs: r.startedAtMs,
    finishedAtMs: r.finishedAtMs,
  };
  // Only the fields the line has: an event read back equals the one written.
  if (keyed) {
    base.origin = r.origin as string;
    base.seq = r.seq as number;
  }
  if (r.paid !== undefined) base.paid = r.paid;
  if (billing !== undefined) base.billing = billing;
  return base;
}

/** Serializes one event as a spool line (with its newline). */
export function spoolLine(e: UsageEvent): string {
  return `${JSON.stringify({
    requestId: e.requestId,
    minerHotkey: e.minerHotkey,
    model: e.model,
    promptTokens: e.promptTokens,
    completionTokens: e.completionTokens,
    outcome: e.outcome,
    startedAtMs: e.startedAtMs,
    finishedAtMs: e.finishedAtMs,
    // JSON.stringify leaves out undefined: events without a key stay as before.
    origin: e.origin,
    seq: e.seq,
    paid: e.paid,
    billing: e.billing,
  })}\n`;
}

/** The durable usage spool. Open it with `UsageSpool.open`. */
export class UsageSpool {
  readonly dir: string;
  readonly #maxBytes: number;
  readonly #file: FileHandle;
  #size: number;
  #acked: number;
  #depth: number;
  #corrupt = 0;
  #io: Promise<unknown> = Promise.resolve();
  #pending: string[] = [];
  #pendingEvents = 0;
  /** The write that will carry the lines now pending (not started yet). */
  #next: Promise<void> | undefined;
  #closed = false;

  private constructor(
    dir: string,
    file: FileHandle,
    size: number,
    acked: number,
    depth: number,
    max: number,
  ) {
    this.dir = dir;
    this.#file = file;
    this.#size = size;
    this.#acked = acked;
    this.#depth = depth;
    this.#maxBytes = max;
  }

  /** Opens the spool, dropping a torn last line and counting what is left to replay. */
  static async open(options: SpoolOptions): Promise<UsageSpool> {
    await mkdir(options.dir, { recursive: true });
    const file = await open(join(options.dir, SPOOL_FILE), "a+");
    try {
      // Make the file's directory entry durable too (it may have just been created).
      await syncDir(options.dir);
      let size = (await file.stat()).size;
      const complete = await lastNewlineEnd(file, size);
      if (complete < size) {
        await file.truncate(complete);
        await file.sync();
        size = complete;
      }
      let acked = await readAck(options.dir);
      if (acked > size) {
        // A crash between emptying the spool and writing ack 0: the old ack
        // must not survive, or it would skip events appended from now on.
        acked = 0;
        await writeAck(options.dir, 0);
      }
      const depth = await countLines(file, acked, size);
      return new UsageSpool(options.dir, file, size, acked, depth, options.maxBytes ?? 1 << 30);
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  /** Events appended and not yet acknowledged. */
  get depth(): number {
    return this.#depth;
  }

  /** Bytes not yet acknowledged. */
  get pendingBytes(): number {
    return this.#size - this.#acked;
  }

  /** Unreadable lines skipped during replay. */
  get corruptLines(): number {
    return this.#corrupt;
  }

  /**
   * Appends events; resolves once they are fsynced. Rejects with `unavailable`
   * when the spool is full or the disk fails (the events are then NOT held).
   */
  append(events: readonly UsageEvent[]): Promise<void> {
    if (this.#closed) return Promise.reject(new TensorClawError("unavailable", "usage spool is closed"));
    if (events.length === 0) return Promise.resolve();
    for (const e of events) this.#pending.push(spoolLine(e));
    this.#pendingEvents += events.length;
    // Group commit: everything pending rides on the next write + fsync,
    // which starts after the one in progress (if any) and takes all lines
    // pending at that moment.
    this.#next ??= this.#serial(() => this.#writePending());
    return this.#next;
  }

  /** Reads up to `max` events from the acknowledged offset, in order; undefined when empty. */
  read(max: number): Promise<SpoolBatch | undefined> {
    return this.#serial(async () => {
      if (this.#acked >= this.#size) return undefined;
      const len = Math.min(READ_CHUNK, this.#size - this.#acked);
      const buf = Buffer.alloc(len);
      const { bytesRead } = await this.#file.read(buf, 0, len, this.#acked);
      const events: UsageEvent[] = [];
      let pos = 0;
      let lines = 0;
      while (events.length < max) {
        const nl = buf.indexOf(10, pos);
        if (nl === -1 || nl >= bytesRead) break;
        const e = parseSpoolLine(buf.toString("utf8", pos, nl));
        if (e === undefined) this.#corrupt++;
        else events.push(e);
        lines++;
        pos = nl + 1;
      }
      if (lines === 0) {
        throw new TensorClawError("internal", `usage spool line longer than ${READ_CHUNK} bytes`);
      }
      return { events, endOffset: this.#acked + pos, lines };
    });
  }

  /** Marks everything before `endOffset` as written to the ledger; empties the spool when all is. */
  ack(batch: SpoolBatch): Promise<void> {
    return this.#serial(async () => {
      if (batch.endOffset <= this.#acked) return;
      this.#acked = batch.endOffset;
      this.#depth -= batch.lines;
      if (this.#acked >= this.#size && this.#pending.length === 0) {
        // Order matters for a crash in between: the ack goes to 0 only after
        // the file is empty; an old ack past the end is clamped on open.
        await this.#file.truncate(0);
        await this.#file.sync();
        this.#size = 0;
        this.#acked = 0;
        this.#depth = 0;
      }
      await writeAck(this.dir, this.#acked);
    });
  }

  /** Waits for pending writes, then closes the file. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#io.catch(() => {});
    await this.#file.close();
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const step = this.#io.then(fn);
    this.#io = step.catch(() => {});
    return step;
  }

  async #writePending(): Promise<void> {
    this.#next = undefined;
    const lines = this.#pending;
    const n = this.#pendingEvents;
    this.#pending = [];
    this.#pendingEvents = 0;
    const text = lines.join("");
    const bytes = Buffer.byteLength(text);
    if (this.#size + bytes > this.#maxBytes) {
      throw new TensorClawError("unavailable", `usage spool is full (${this.#maxBytes} bytes)`);
    }
    try {
      await this.#file.write(text);
      await this.#file.sync();
    } catch (cause) {
      // A partial write leaves a torn tail: cut back to the last good size.
      await this.#file.truncate(this.#size).catch(() => {});
      throw new TensorClawError("unavailable", "usage spool write failed", { cause });
    }
    this.#size += bytes;
    this.#depth += n;
  }
}

/** Bytes read at a time while looking back for the last whole line. */
const TAIL_READ_BYTES = 64 * 1024;

async function lastNewlineEnd(file: FileHandle, size: number): Promise<number> {
  let end = size;
  const buf = Buffer.alloc(TAIL_READ_BYTES);
  while (end > 0) {
    const start = Math.max(0, end - buf.length);
    const { bytesRead } = await file.read(buf, 0, end - start, start);
    const nl = buf.subarray(0, bytesRead).lastIndexOf(10);
    if (nl !== -1) return start + nl + 1;
    end = start;
  }
  return 0;
}

async function countLines(file: FileHandle, from: number, to: number): Promise<number> {
  let n = 0;
  const buf = Buffer.alloc(READ_CHUNK);
  for (let pos = from; pos < to; ) {
    const { bytesRead } = await file.read(buf, 0, Math.min(buf.length, to - pos), pos);
    if (bytesRead === 0) break;
    for (let i = buf.indexOf(10, 0); i !== -1 && i < bytesRead; i = buf.indexOf(10, i + 1)) n++;
    pos += bytesRead;
  }
  return n;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

async function readAck(dir: string): Promise<number> {
  try {
    const fh = await open(join(dir, ACK_FILE), "r");
    try {
      const text = (await fh.readFile("utf8")).trim();
      return /^\d{1,16}$/.test(text) ? Number(text) : 0;
    } finally {
      await fh.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
}

async function writeAck(dir: string, offset: number): Promise<void> {
  const tmp = join(dir, `${ACK_FILE}.tmp`);
  const fh = await open(tmp, "w");
  try {
    await fh.write(`${offset}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, ACK_FILE));
  // Losing the rename on power loss only replays more (idempotent); no dir fsync per ack.
}
