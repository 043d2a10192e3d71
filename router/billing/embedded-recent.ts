import { type GenerationRecord, newestFirst, RECENT_GENERATIONS_MAX, recentLimit } from "./billing.js";

/** A generation record and when it goes (embedded-state.ts keeps one per settled request). */
export interface ExpiringGeneration {
  readonly record: GenerationRecord;
  readonly expiresAtMs: number;
}

/**
 * The embedded store's index of each key's newest generation records, the
 * in-memory twin of Redis's `P{key:<id>}:gz`: per key at most
 * RECENT_GENERATIONS_MAX records, newest first. It is never journalled:
 * replaying the journal's settle and record lines rebuilds it, since every
 * record the state keeps passes through `add`.
 */
export class RecentGenerations {
  /** Key id → its newest records, newest first (`newestFirst`). */
  readonly #byKey = new Map<string, ExpiringGeneration[]>();

  /** Indexes one record; a record of the same request replaces the one indexed before. */
  add(g: ExpiringGeneration): void {
    const keyId = g.record.keyId;
    let list = this.#byKey.get(keyId);
    if (list === undefined) {
      list = [];
      this.#byKey.set(keyId, list);
    }
    const same = list.findIndex((x) => x.record.id === g.record.id);
    if (same !== -1) list.splice(same, 1);
    // Lists are short (at most 100): a linear search for the place is cheaper than any structure.
    let at = 0;
    while (at < list.length && newestFirst(list[at]?.record as GenerationRecord, g.record) <= 0) at++;
    if (at >= RECENT_GENERATIONS_MAX) return;
    list.splice(at, 0, g);
    if (list.length > RECENT_GENERATIONS_MAX) list.length = RECENT_GENERATIONS_MAX;
  }

  /**
   * Of a key's newest `limit` (recentLimit) records, those live at `nowMs`;
   * like Redis's recent.lua, which reads that many ids and drops gone records.
   */
  list(keyId: string, limit: number, nowMs: number): GenerationRecord[] {
    const newest = (this.#byKey.get(keyId) ?? []).slice(0, recentLimit(limit));
    return newest.filter((g) => g.expiresAtMs > nowMs).map((g) => g.record);
  }

  /** Drops records gone at `nowMs`, and keys left with none. */
  trim(nowMs: number): void {
    for (const [keyId, list] of this.#byKey) {
      const live = list.filter((g) => g.expiresAtMs > nowMs);
      if (live.length === 0) this.#byKey.delete(keyId);
      else if (live.length !== list.length) this.#byKey.set(keyId, live);
    }
  }
}
