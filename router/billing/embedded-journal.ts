/**
 * The journal file of the embedded billing store: its lines, replaying them
 * into a `BillingState`, rewriting the file with only live records
 * (compaction), and the lock every writer takes. `EmbeddedBilling`
 * (embedded.ts) appends the lines of its own changes; the CLI appends
 * account settings and credit entries through `appendBillingLines` while a
 * router may be running.
 *
 * # Lines
 *
 * One JSON document per line:
 *
 * - `{"c":[keyId, metered, budgetDailyMicros or null, atMs]}` account settings
 * - `{"cr":[id, keyId, amountMicros, note, source, atMs]}` a credit entry: added to
 *   the log and the balance, unless its id was applied before (then ignored)
 * - `{"s":[atMs, chargedMicros, expiresAtMs],"g":{generation record}}` a settled request:
 *   `atMs` is where its spend counts, `chargedMicros` what came off the balance
 *   (0 for an unmetered key), `expiresAtMs` when its record goes
 * - `{"cu":[name, value]}` a cursor
 *
 * and, written only by compaction:
 *
 * - `{"ce":[...as cr]}` a credit entry already in the balance (log only)
 * - `{"a":[keyId, balanceMicros, creditedMicros, spentMicros]}` an account's totals (absolute)
 * - `{"bk":[keyId, bucketStart, model, prompt, completion, costMicros, requests]}` a 24 h bucket
 * - `{"dy":[keyId, utcDay, model, prompt, completion, costMicros, requests]}` a day total
 * - `{"g":{generation record},"x":expiresAtMs}` a live generation record
 *
 * Lines are applied in file order; a settle line of a request already
 * settled is ignored, so a line written twice cannot charge twice.
 *
 * # Lock
 *
 * Every writer appends (and a store compacts) only while holding
 * `<path>.lock`, a file created with O_EXCL and removed after. A lock older
 * than {@link LOCK_STALE_MS} is taken to be a crashed writer's and removed.
 * A writer first terminates a torn last line (a crashed writer's), so its
 * own line is never glued to it.
 */
import { constants } from "node:fs";
import { type FileHandle, open, readFile, stat, unlink } from "node:fs/promises";
import { setTimeout as delay } from "node:timers/promises";
import { TensorClawError } from "../../common/errors.js";
import { rewriteLines } from "../../common/rewrite-lines.js";
import type { AccountSettings, CreditEntry, CreditSource } from "./billing.js";
import { generationFrom, isId, isKeyId, isMicros, type SettleItem } from "./check.js";
import type { BillingState } from "./embedded-state.js";

/** A lock file older than this is a crashed writer's and is removed. */
export const LOCK_STALE_MS = 10_000;
/** A writer waiting longer than this for the lock gives up with `unavailable`. */
export const LOCK_WAIT_MS = 30_000;

/** The line of an account's settings. */
export function configureLine(keyId: string, s: AccountSettings, atMs: number): string {
  return JSON.stringify({ c: [keyId, s.metered, s.budgetDailyMicros, atMs] });
}

/** The line of a credit entry. */
export function creditLine(e: CreditEntry, kind: "cr" | "ce" = "cr"): string {
  return JSON.stringify({ [kind]: [e.id, e.keyId, e.amountMicros, e.note, e.source, e.atMs] });
}

/** The line of a settled request. */
export function settleLine(item: SettleItem, charged: number): string {
  return JSON.stringify({ s: [item.atMs, charged, item.expiresAtMs], g: item.record });
}

/** The line of a cursor. */
export function cursorLine(name: string, value: string): string {
  return JSON.stringify({ cu: [name, value] });
}

const isTime = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isSigned = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
const isCounts = (v: unknown[]): v is number[] => v.length === 4 && v.every(isTime);

function entryFrom(v: unknown): CreditEntry | undefined {
  if (!Array.isArray(v)) return undefined;
  const [id, keyId, amount, note, source, atMs] = v as unknown[];
  if (!isId(id) || !isKeyId(keyId) || !isMicros(amount, true) || typeof note !== "string") return undefined;
  if ((source !== "operator" && source !== "deposit") || !isTime(atMs)) return undefined;
  return { id, keyId, amountMicros: amount, note, source: source as CreditSource, atMs };
}

/** Applies one journal line to `state`; false when the line is unreadable. */
export function applyBillingLine(state: BillingState, line: string): boolean {
  let doc: unknown;
  try {
    doc = JSON.parse(line);
  } catch {
    return false;
  }
  if (typeof doc !== "object" || doc === null) return false;
  const rec = doc as Record<string, unknown>;
  if (Array.isArray(rec.s)) {
    const g = generationFrom(rec.g);
    const [atMs, charged, exp] = rec.s as unknown[];
    if (g === undefined || !isTime(atMs) || !isMicros(charged) || !isTime(exp)) return false;
    if (state.isSettled(g.keyId, g.id, Number.NEGATIVE_INFINITY)) return true;
    const item: SettleItem = {
      keyId: g.keyId,
      requestId: g.id,
      // Holds live in one process's memory only: a replayed line has none to shrink.
      holdId: undefined,
      model: g.model,
      atMs,
      promptTokens: g.promptTokens,
      completionTokens: g.completionTokens,
      costMicros: g.costMicros,
      record: g,
      expiresAtMs: exp,
    };
    // Settled as of its own time: nothing is trimmed here; the loader trims after.
    state.settle(item, charged, atMs);
    return true;
  }
  if (Array.isArray(rec.cr) || Array.isArray(rec.ce)) {
    const e = entryFrom(rec.cr ?? rec.ce);
    if (e === undefined) return false;
    state.credit(e, rec.cr !== undefined);
    return true;
  }
  if (Array.isArray(rec.c)) {
    const [keyId, metered, budget] = rec.c as unknown[];
    if (!isKeyId(keyId) || typeof metered !== "boolean" || (budget !== null && !isMicros(budget)))
      return false;
    state.configure(keyId, { metered, budgetDailyMicros: budget as number | null });
    return true;
  }
  if (Array.isArray(rec.cu)) {
    const [name, value] = rec.cu as unknown[];
    if (!isId(name) || typeof value !== "string") return false;
    state.cursors.set(name, value);
    return true;
  }
  if (Array.isArray(rec.a)) {
    const [keyId, balance, credited, spent] = rec.a as unknown[];
    if (!isKeyId(keyId) || !isSigned(balance) || !isSigned(credited) || !isTime(spent)) return false;
    const a = state.account(keyId);
    a.balance = balance;
    a.credited = credited;
    a.spent = spent;
    return true;
  }
  if (Array.isArray(rec.bk) || Array.isArray(rec.dy)) {
    const [keyId, at, model, ...counts] = (rec.bk ?? rec.dy) as unknown[];
    if (!isKeyId(keyId) || !isSigned(at) || !isId(model) || !isCounts(counts)) return false;
    state.addSpend(keyId, rec.bk !== undefined ? "bucket" : "day", at, model, counts);
    return true;
  }
  if (rec.g !== undefined && isTime(rec.x)) {
    const g = generationFrom(rec.g);
    if (g === undefined) return false;
    state.keepGeneration({ record: g, expiresAtMs: rec.x });
    return true;
  }
  return false;
}

/**
 * Applies the complete lines of `chunk` (bytes read from the journal) to
 * `state`. Returns how many bytes were whole lines (a partial last line is
 * left for later) and how many lines were unreadable.
 */
export function applyChunk(state: BillingState, chunk: Buffer): { consumed: number; corrupt: number } {
  const end = chunk.lastIndexOf(10) + 1;
  let corrupt = 0;
  if (end === 0) return { consumed: 0, corrupt };
  const lines = chunk.toString("utf8", 0, end - 1).split("\n");
  for (const line of lines) if (!applyBillingLine(state, line)) corrupt++;
  return { consumed: end, corrupt };
}

/** Replays the whole journal (if it exists); a torn last line is left out. Returns the lines skipped. */
export async function loadBillingJournal(path: string, state: BillingState): Promise<number> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
  return applyChunk(state, buf).corrupt;
}

/**
 * Rewrites the journal with only the live records of `state` at `nowMs`
 * (atomically, see rewriteLines). Call with the lock held.
 */
export async function compactBillingJournal(path: string, state: BillingState, nowMs: number): Promise<void> {
  state.trimAll(nowMs);
  await rewriteLines(path, async (push) => {
    for (const [keyId, a] of state.accounts) {
      if (a.settings !== undefined) await push(configureLine(keyId, a.settings, nowMs));
      for (const e of a.entries) await push(creditLine(e, "ce"));
      await push(JSON.stringify({ a: [keyId, a.balance, a.credited, a.spent] }));
      for (const [k, counts] of a.buckets) {
        const tab = k.indexOf("\t");
        await push(JSON.stringify({ bk: [keyId, Number(k.slice(0, tab)), k.slice(tab + 1), ...counts] }));
      }
      for (const [k, counts] of a.days) {
        const tab = k.indexOf("\t");
        await push(JSON.stringify({ dy: [keyId, Number(k.slice(0, tab)), k.slice(tab + 1), ...counts] }));
      }
    }
    for (const g of state.generations.values()) await push(JSON.stringify({ g: g.record, x: g.expiresAtMs }));
    for (const [name, value] of state.cursors) await push(cursorLine(name, value));
  });
}

/**
 * Runs `fn` holding the journal's lock file (`<path>.lock`, created with
 * O_EXCL). Waits for another holder; removes a lock older than
 * {@link LOCK_STALE_MS} (its writer crashed). Two waiters judging the same
 * lock stale at the same instant could both proceed: a crash while writing
 * is already the rare case, and a writer finishes in milliseconds.
 */
export async function withJournalLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${path}.lock`;
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let pause = 2; ; pause = Math.min(50, pause * 2)) {
    try {
      const fh = await open(lock, constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY);
      await fh.write(`${process.pid}\n`);
      await fh.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const held = await stat(lock).catch(() => undefined);
    if (held !== undefined && Date.now() - held.mtimeMs > LOCK_STALE_MS) {
      await unlink(lock).catch(() => {});
      continue;
    }
    if (Date.now() > deadline) {
      throw new TensorClawError("unavailable", `billing journal ${path} stayed locked (${lock})`);
    }
    await delay(pause);
  }
  try {
    return await fn();
  } finally {
    await unlink(lock).catch(() => {});
  }
}

/**
 * Appends whole lines to an open journal handle whose known end is `size`;
 * when the file is longer and does not end in a newline (a crashed writer's
 * torn line), the torn line is terminated first. Returns the new size.
 * Call with the lock held.
 */
export async function appendWhole(file: FileHandle, lines: readonly string[]): Promise<number> {
  const { size } = await file.stat();
  let text = `${lines.join("\n")}\n`;
  if (size > 0) {
    const last = Buffer.alloc(1);
    await file.read(last, 0, 1, size - 1);
    if (last[0] !== 10) text = `\n${text}`;
  }
  await file.write(text);
  return size + Buffer.byteLength(text);
}

/**
 * Appends lines to the journal at `path` from another process (the CLI):
 * takes the lock, terminates a torn last line, writes, fsyncs. A running
 * store applies them within about a second (embedded.ts).
 */
export async function appendBillingLines(path: string, lines: readonly string[]): Promise<void> {
  await withJournalLock(path, () => appendLocked(path, lines));
}

/** `appendBillingLines` for a caller already holding the lock. */
export async function appendLocked(path: string, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  const file = await open(path, "a+");
  try {
    await appendWhole(file, lines);
    await file.sync();
  } finally {
    await file.close();
  }
}
