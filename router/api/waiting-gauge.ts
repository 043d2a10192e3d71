import type { Gauge } from "prom-client";

/**
 * One request's share of `tensorclaw_api_requests_waiting`: counted while
 * it waits for a miner, never twice, and always given back (stop() is
 * idempotent, so the relay loop's `finally` can call it whatever happened).
 */
export class WaitingGauge {
  #counted = false;

  /** Starts counted. */
  constructor(private readonly gauge: Gauge) {
    this.start();
  }

  start(): void {
    if (this.#counted) return;
    this.#counted = true;
    this.gauge.inc();
  }

  stop(): void {
    if (!this.#counted) return;
    this.#counted = false;
    this.gauge.dec();
  }
}
