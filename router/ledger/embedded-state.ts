/**
 * The in-memory tables of the embedded ledger: token counts per (miner,
 * model, bucket), the remembered request ids, the seen-(origin, seq) bitmap
 * chunks and the tier map, with the trimming that drops what expired. No I/O:
 * `EmbeddedLedger` (embedded.ts) drives it and persists it through the
 * journal (embedded-journal.ts).
 */
import { type LedgerOptions, retentionCutoff, SEEN_CHUNK_BITS, seenSlot } from "./ledger.js";
import { addCounts, type Counts, countsFrom } from "./outcomes.js";

/** One chunk of seen (origin, seq) markers of a miner. */
export interface SeenChunk {
  readonly bits: Uint8Array;
  /** Forgotten at this time (the clock of `record`). */
  expiresAtMs: number;
}

/** The counts of one (miner, model). */
export interface Cell {
  /** Bucket start → counts (tokens, requests and outcomes: see outcomes.ts). */
  readonly buckets: Map<number, Counts>;
}

/** What the embedded ledger holds in memory. */
export class EmbeddedLedgerState {
  /** Hotkey → model → cell. */
  readonly cells = new Map<string, Map<string, Cell>>();
  /** `hotkey \n requestId` → expiry (insertion order is expiry order: the clock only moves on). */
  readonly ids = new Map<string, number>();
  /** `hotkey \n origin \n chunk` → bitmap of counted seq values. */
  readonly seen = new Map<string, SeenChunk>();
  /** Model → tier multiplier. */
  readonly tiers = new Map<string, number>();

  constructor(readonly options: LedgerOptions) {}

  /**
   * Adds counts to bucket `b` of (miner, model); creating a bucket drops the
   * cell's buckets older than `cutoff`.
   */
  add(hk: string, model: string, b: number, counts: readonly number[], cutoff: number): void {
    let models = this.cells.get(hk);
    if (models === undefined) {
      models = new Map();
      this.cells.set(hk, models);
    }
    let cell = models.get(model);
    if (cell === undefined) {
      cell = { buckets: new Map() };
      models.set(model, cell);
    }
    const t = cell.buckets.get(b);
    if (t !== undefined) {
      addCounts(t, counts);
      return;
    }
    cell.buckets.set(b, countsFrom(counts));
    // Like the Redis script: a new bucket is the moment to drop expired ones.
    for (const old of cell.buckets.keys()) if (old < cutoff) cell.buckets.delete(old);
  }

  /**
   * Marks (origin, seq) of a miner as counted, keeping its chunk until at
   * least `expiresAtMs`. False when it was already marked (a live marker).
   */
  mark(hk: string, origin: string, seq: number, expiresAtMs: number, nowMs: number): boolean {
    const { chunk, bit } = seenSlot(seq);
    const c = this.seenChunk(hk, origin, chunk, expiresAtMs, nowMs);
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
  seenChunk(hk: string, origin: string, chunk: number, expiresAtMs: number, nowMs: number): SeenChunk {
    const key = `${hk}\n${origin}\n${chunk}`;
    let c = this.seen.get(key);
    if (c === undefined || c.expiresAtMs <= nowMs) {
      c = { bits: new Uint8Array(SEEN_CHUNK_BITS / 8), expiresAtMs };
      this.seen.set(key, c);
    }
    return c;
  }

  /** Drops what expired at `nowMs`: buckets past the retention, empty cells, ids and seen chunks. */
  trimAll(nowMs: number): void {
    const cutoff = retentionCutoff(nowMs, this.options);
    for (const [hk, models] of this.cells) {
      for (const [model, cell] of models) {
        for (const b of cell.buckets.keys()) if (b < cutoff) cell.buckets.delete(b);
        if (cell.buckets.size === 0) models.delete(model);
      }
      if (models.size === 0) this.cells.delete(hk);
    }
    for (const [key, exp] of this.ids) {
      if (exp > nowMs) break;
      this.ids.delete(key);
    }
    // Few chunks (one per 65,536 events of a miner), so a full scan is cheap.
    for (const [key, c] of this.seen) if (c.expiresAtMs <= nowMs) this.seen.delete(key);
  }

  /** Records a compacted journal holds: one per bucket, id, seen chunk and tier. */
  liveRecords(): number {
    let n = this.ids.size + this.seen.size + this.tiers.size;
    for (const models of this.cells.values()) for (const cell of models.values()) n += cell.buckets.size;
    return n;
  }
}
