import type { CatalogueEntry } from "./entry.js";

/**
 * Where the catalogue is kept: Redis (shared by router replicas, every
 * change audited) or, without Redis, a journal file beside the embedded
 * ledger. `tensorclaw router models` writes it; running routers read it
 * again whenever `version()` changes.
 */
export interface CatalogueStore {
  /** Every valid entry, sorted by id; `skipped` counts stored entries that are not valid. */
  read(): Promise<{ entries: CatalogueEntry[]; skipped: number }>;
  /** Changes whenever the catalogue may have changed (cheap: polled every few seconds). */
  version(): Promise<string>;
  /** Adds or replaces an entry (audited with `nowMs`). */
  set(entry: CatalogueEntry, nowMs: number): Promise<void>;
  /** Removes a model; resolves to whether it was there. */
  remove(id: string, nowMs: number): Promise<boolean>;
  /** Releases what the store opened itself. */
  close(): Promise<void>;
}
