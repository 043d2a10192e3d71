/** Most keys a replay cache holds unless told otherwise. */
export const DEFAULT_REPLAY_CACHE_ENTRIES = 100_000;

/**
 * Remembers keys for a bounded time so a signed message can be used only
 * once within its freshness window. Memory is bounded by `maxEntries`: when
 * full, the oldest entries are dropped first (they are the closest to
 * expiring anyway; the freshness check refuses them after expiry).
 */
export class ReplayCache {
  readonly #ttlMs: number;
  readonly #maxEntries: number;
  // Insertion order equals expiry order because the TTL is constant.
  readonly #expiry = new Map<string, number>();

  constructor(ttlMs: number, maxEntries = DEFAULT_REPLAY_CACHE_ENTRIES) {
    this.#ttlMs = ttlMs;
    this.#maxEntries = maxEntries;
  }

  /**
   * Records `key` at `nowMs`. Returns false when the key was already seen
   * and has not expired (a replay), true when it is new.
   */
  remember(key: string, nowMs: number): boolean {
    this.#prune(nowMs);
    const exp = this.#expiry.get(key);
    if (exp !== undefined && exp > nowMs) return false;
    this.#expiry.delete(key);
    this.#expiry.set(key, nowMs + this.#ttlMs);
    while (this.#expiry.size > this.#maxEntries) {
      const oldest = this.#expiry.keys().next();
      if (oldest.done) break;
      this.#expiry.delete(oldest.value);
    }
    return true;
  }

  /** Entries currently held. */
  get size(): number {
    return this.#expiry.size;
  }

  #prune(nowMs: number): void {
    for (const [key, exp] of this.#expiry) {
      if (exp > nowMs) break;
      this.#expiry.delete(key);
    }
  }
}
