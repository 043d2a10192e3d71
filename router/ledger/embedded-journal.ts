/**
 * The journal file of the embedded ledger: replaying it into an
 * `EmbeddedLedgerState` on open and rewriting it with only live records
 * (compaction). `EmbeddedLedger` (embedded.ts) appends the lines of
 * new events and tier changes itself; embedded-tiers.ts appends tier
 * lines without opening the ledger.
 *
 * # Lines
 *
 * One JSON document per line:
 *
 * - `{"e":[hotkey, model, requestId, bucketStart, prompt, completion, recordedAtMs],"o":"c","p":1}` one
 *   counted event without origin/seq; with them, three more elements: `origin, seq, markerExpiresAtMs`.
 *   `o` is the outcome's code (outcomes.ts OUTCOME_CODE); lines written before outcomes were kept have
 *   none and count as one credited request with no outcome. `p: 1` marks a paid event (its tokens count
 *   as paid too); without it (free, or written before paid tokens were kept) none are paid.
 * - `{"b":[hotkey, model, bucketStart, prompt, completion, requests, served, failedBeforeOutput,
 *   failedAfterOutput, deadlineCut, paidPrompt, paidCompletion]}` an aggregated bucket (from compaction;
 *   older ones stop at requests or at deadlineCut)
 * - `{"i":[hotkey, requestId, expiresAtMs]}` a remembered request id (from compaction)
 * - `{"s":[hotkey, origin, chunk, expiresAtMs, base64 bitmap]}` a seen-bitmap chunk (from compaction)
 * - `{"t":[model, multiplier or null, atMs]}` a tier change
 *
 * Lines are additive, so loading replays them in order.
 */
import { readFile } from "node:fs/promises";
import { rewriteLines } from "../../common/rewrite-lines.js";
import type { UsageEvent, UsageOutcome } from "../usage/event.js";
import type { EmbeddedLedgerState } from "./embedded-state.js";
import { dedupeTtlMs, ORIGIN_PATTERN, SEEN_CHUNK_BITS } from "./ledger.js";
import { COUNT_FIELDS, countsOf, OUTCOME_CODE } from "./outcomes.js";

const OUTCOME_BY_CODE = new Map(Object.entries(OUTCOME_CODE).map(([o, code]) => [code, o as UsageOutcome]));

/**
 * Replays the journal at `path` (if it exists) into `state`, then trims what
 * expired at `nowMs`. A torn last line (crash mid-write) is dropped; other
 * unreadable lines are skipped. Returns how many were skipped.
 */
export async function loadJournal(path: string, state: EmbeddedLedgerState, nowMs: number): Promise<number> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw err;
  }
  const ttl = dedupeTtlMs(state.options);
  const lines = text.split("\n");
  // The last element is "" after a clean final newline, else a torn line.
  lines.pop();
  let corrupt = 0;
  for (const line of lines) {
    if (!applyLine(state, line, ttl)) corrupt++;
  }
  state.trimAll(nowMs);
  return corrupt;
}

/** Applies one journal line to `state`; false when the line is unreadable. */
function applyLine(state: EmbeddedLedgerState, line: string, ttl: number): boolean {
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
      if (typeof origin !== "string" || !ORIGIN_PATTERN.test(origin) || !num(seq) || !num(exp)) return false;
      state.mark(hk, origin, seq, exp, Number.NEGATIVE_INFINITY);
    } else {
      state.ids.delete(`${hk}\n${id}`);
      state.ids.set(`${hk}\n${id}`, at + ttl);
    }
    if (rec.p !== undefined && rec.p !== 1) return false;
    const paid = rec.p === 1;
    let counts: readonly number[] = paid ? [p, c, 1, 0, 0, 0, 0, p, c] : [p, c, 1];
    if (rec.o !== undefined) {
      const outcome = OUTCOME_BY_CODE.get(rec.o as string);
      if (outcome === undefined) return false;
      counts = countsOf({ outcome, promptTokens: p, completionTokens: c, paid } as UsageEvent);
    }
    state.add(hk, model, b, counts, Number.NEGATIVE_INFINITY);
    return true;
  }
  if (Array.isArray(rec.s)) {
    const [hk, origin, chunk, exp, bits] = rec.s as unknown[];
    if (!str(hk) || typeof origin !== "string" || !ORIGIN_PATTERN.test(origin)) return false;
    if (!num(chunk) || !num(exp) || typeof bits !== "string") return false;
    const raw = Buffer.from(bits, "base64");
    if (raw.length > SEEN_CHUNK_BITS / 8) return false;
    const cur = state.seenChunk(hk, origin, chunk, exp, Number.NEGATIVE_INFINITY);
    for (let i = 0; i < raw.length; i++) cur.bits[i] = (cur.bits[i] ?? 0) | (raw[i] ?? 0);
    if (cur.expiresAtMs < exp) cur.expiresAtMs = exp;
    return true;
  }
  if (Array.isArray(rec.b)) {
    const [hk, model, b, ...counts] = rec.b as unknown[];
    if (!str(hk) || !str(model) || !num(b) || ![3, 7, COUNT_FIELDS].includes(counts.length)) return false;
    if (!counts.every(num)) return false;
    state.add(hk, model, b, counts, Number.NEGATIVE_INFINITY);
    return true;
  }
  if (Array.isArray(rec.i)) {
    const [hk, id, exp] = rec.i as unknown[];
    if (!str(hk) || !str(id) || !num(exp)) return false;
    state.ids.set(`${hk}\n${id}`, exp);
    return true;
  }
  if (Array.isArray(rec.t)) {
    const [model, mult] = rec.t as unknown[];
    if (!str(model)) return false;
    if (mult === null) state.tiers.delete(model);
    else if (typeof mult === "number" && Number.isFinite(mult) && mult >= 0) state.tiers.set(model, mult);
    else return false;
    return true;
  }
  return false;
}

/**
 * Rewrites the journal at `path` with only the live records of `state` at
 * `nowMs` (atomically, see rewriteLines).
 */
export async function compactJournal(path: string, state: EmbeddedLedgerState, nowMs: number): Promise<void> {
  state.trimAll(nowMs);
  await rewriteLines(path, async (push) => {
    for (const [model, mult] of state.tiers) await push(JSON.stringify({ t: [model, mult, nowMs] }));
    for (const [hk, models] of state.cells) {
      for (const [model, cell] of models) {
        for (const [b, counts] of cell.buckets) await push(JSON.stringify({ b: [hk, model, b, ...counts] }));
      }
    }
    for (const [key, exp] of state.ids) {
      const nl = key.indexOf("\n");
      await push(JSON.stringify({ i: [key.slice(0, nl), key.slice(nl + 1), exp] }));
    }
    for (const [key, c] of state.seen) {
      const [hk, origin, n] = key.split("\n");
      // Trailing zero bytes carry nothing: a young chunk stays short.
      let end = c.bits.length;
      while (end > 0 && c.bits[end - 1] === 0) end--;
      const bits = Buffer.from(c.bits.buffer, c.bits.byteOffset, end).toString("base64");
      await push(JSON.stringify({ s: [hk, origin, Number(n), c.expiresAtMs, bits] }));
    }
  });
}
