import { TensorClawError } from "../../common/errors.js";

/** Default of `--max-concurrent-per-key`. */
export const DEFAULT_MAX_CONCURRENT_PER_KEY = 32;

/** When a key at its cap may try again: about the time a short request takes. */
const RETRY_AFTER_MS = 1_000;

/**
 * How many requests one API key may have in progress on this router
 * (`--max-concurrent-per-key`): without a cap, one key within its rate limits
 * could still hold every miner slot and starve every other key. Counted
 * per router process (replicas each allow the cap). 0 turns it off.
 */
export class KeyConcurrency {
  readonly #max: number;
  readonly #inFlight = new Map<string, number>();

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 0) throw new RangeError(`max must be a whole number, got ${max}`);
    this.#max = max;
  }

  /**
   * Takes one of the key's slots and returns its release (idempotent), or
   * throws `rate_limited` (429, retry after a second) when the key holds
   * them all.
   */
  enter(keyId: string): () => void {
    if (this.#max === 0) return () => {};
    const n = this.#inFlight.get(keyId) ?? 0;
    if (n >= this.#max) {
      throw new TensorClawError(
        "rate_limited",
        `This API key already has ${n} requests in progress (at most ${this.#max} at once); wait for one to finish.`,
        { retryAfterMs: RETRY_AFTER_MS },
      );
    }
    this.#inFlight.set(keyId, n + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inFlight.get(keyId) ?? 1) - 1;
      if (left <= 0) this.#inFlight.delete(keyId);
      else this.#inFlight.set(keyId, left);
    };
  }

  /** Requests `keyId` has in progress. */
  inFlight(keyId: string): number {
    return this.#inFlight.get(keyId) ?? 0;
  }
}
