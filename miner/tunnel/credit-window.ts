/**
 * Per-request flow-control credit, miner side (see "Flow control" in
 * tunnel.proto). The router grants bytes of chunk payload; the miner spends
 * them as it sends chunks and holds further chunks (and stops reading its
 * backend) while the next one does not fit. One chunk larger than the whole
 * window may go out when nothing is outstanding, so a big chunk can never
 * deadlock the request. Chunk sizes come from `common/chunk-credit.ts`, the
 * definition the router checks against.
 */
import type { StopSignal } from "../backend/request-stop.js";

/** The credit state of one request. Not thread-bound; the owner serializes calls. */
export class CreditWindow {
  readonly #initial: number;
  #remaining: number;
  #waiter: (() => void) | undefined;

  constructor(initialBytes: number) {
    this.#initial = initialBytes;
    this.#remaining = initialBytes;
  }

  /** Bytes that may still be sent (negative after an oversized chunk). */
  get remaining(): number {
    return this.#remaining;
  }

  /**
   * Whether a chunk of `bytes` may go now: it fits, or nothing is
   * outstanding (remaining at least the initial credit). Zero-byte chunks
   * (a bare finish reason) always fit.
   */
  fits(bytes: number): boolean {
    return bytes <= this.#remaining || this.#remaining >= this.#initial;
  }

  /** Records a sent chunk. */
  spend(bytes: number): void {
    this.#remaining -= bytes;
  }

  /** A Credit frame arrived. */
  grant(bytes: number): void {
    this.#remaining += bytes;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /**
   * Resolves when a chunk of `bytes` fits, or when `signal` aborts
   * (the caller re-checks the signal). One waiter at a time.
   */
  async waitFor(bytes: number, signal: StopSignal): Promise<void> {
    while (!this.fits(bytes) && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const onAbort = () => resolve();
        signal.addEventListener("abort", onAbort, { once: true });
        this.#waiter = () => {
          signal.removeEventListener("abort", onAbort);
          resolve();
        };
      });
    }
  }
}
