/**
 * When each miner is probed next. Every miner has its own clock: the gap
 * between two probes of a miner is exponentially distributed with the
 * configured mean, drawn independently per miner, so probes form a Poisson
 * process per miner — spread over the round, never a burst that hits every
 * miner at once, and with arrival gaps that look like any other
 * independent caller's. Pure: the random source and times come in.
 */

/** A uniform draw in [0, 1). */
export type Random = () => number;

/** One exponential gap with the given mean, in ms (never 0, never infinite). */
export function exponentialGapMs(meanMs: number, random: Random): number {
  // 1 - u is in (0, 1]: its log is finite. The floor keeps a draw of u ≈ 1 from
  // scheduling a probe in the same millisecond.
  const u = random();
  return Math.max(1, -Math.log(1 - Math.min(u, 1 - Number.EPSILON)) * meanMs);
}

/** Per-miner next-probe times. */
export class ProbeSchedule {
  readonly #meanMs: number;
  readonly #random: Random;
  readonly #next = new Map<string, number>();

  constructor(meanMs: number, random: Random) {
    if (!(meanMs > 0)) throw new RangeError("mean probe interval must be positive");
    this.#meanMs = meanMs;
    this.#random = random;
  }

  /**
   * Makes the schedule hold exactly `hotkeys`: a new miner's first probe is
   * one exponential gap from `nowMs` (memoryless: as likely soon as for a
   * miner that was always there); miners no longer listed are dropped.
   */
  sync(hotkeys: Iterable<string>, nowMs: number): void {
    const keep = new Set(hotkeys);
    for (const hk of this.#next.keys()) if (!keep.has(hk)) this.#next.delete(hk);
    for (const hk of [...keep].sort()) {
      if (!this.#next.has(hk)) this.#next.set(hk, nowMs + exponentialGapMs(this.#meanMs, this.#random));
    }
  }

  /** Miners whose probe is due at `nowMs` (sorted); each gets its next time drawn. */
  takeDue(nowMs: number): string[] {
    const due = [...this.#next].filter(([, t]) => t <= nowMs).map(([hk]) => hk);
    due.sort();
    for (const hk of due) {
      const at = this.#next.get(hk) as number;
      // From the due time, not from now: a late loop does not thin the process out.
      this.#next.set(hk, Math.max(at + exponentialGapMs(this.#meanMs, this.#random), nowMs + 1));
    }
    return due;
  }

  /** The earliest next probe time, or undefined when no miner is scheduled. */
  nextDueMs(): number | undefined {
    let min: number | undefined;
    for (const t of this.#next.values()) if (min === undefined || t < min) min = t;
    return min;
  }

  /** Scheduled miners. */
  get size(): number {
    return this.#next.size;
  }
}
