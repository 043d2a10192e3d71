/** Weight of a new sample in the latency estimate (exponentially weighted moving average). */
export const LATENCY_ALPHA = 0.2;

/** What the session should do on a ping tick. */
export type PingDecision =
  | { readonly action: "ping"; readonly seq: number }
  | { readonly action: "close"; readonly unanswered: number };

/**
 * The liveness bookkeeping of one tunnel, with no timers or sockets: which
 * pings are unanswered, when to give up, and the smoothed latency (ping
 * round trips blended with time-to-first-token samples from callers).
 * Times are passed in, so it is tested without waiting.
 */
export class LivenessTracker {
  readonly #maxMissed: number;
  #seq = 0;
  /** Unanswered pings: seq -> sent at (ms), oldest first. */
  readonly #outstanding = new Map<number, number>();
  #latencyMs = 0;

  constructor(maxMissedPongs: number) {
    this.#maxMissed = maxMissedPongs;
  }

  /** A ping is due: send one, or close when `maxMissedPongs` consecutive pings went unanswered. */
  tick(nowMs: number): PingDecision {
    if (this.#outstanding.size >= this.#maxMissed) {
      return { action: "close", unanswered: this.#outstanding.size };
    }
    this.#seq = (this.#seq + 1) >>> 0;
    this.#outstanding.set(this.#seq, nowMs);
    return { action: "ping", seq: this.#seq };
  }

  /**
   * A pong arrived. It answers its ping and every older one (the miner is
   * alive), and its round trip feeds the estimate. Unknown seqs are ignored.
   * Returns the round trip in ms, or undefined.
   */
  pong(seq: number, nowMs: number): number | undefined {
    const sentAt = this.#outstanding.get(seq);
    if (sentAt === undefined) return undefined;
    for (const s of this.#outstanding.keys()) {
      this.#outstanding.delete(s);
      if (s === seq) break;
    }
    const rtt = Math.max(0, nowMs - sentAt);
    this.observe(rtt);
    return rtt;
  }

  /** Blends one latency sample (ms) into the estimate; the first sample sets it. */
  observe(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.#latencyMs = this.#latencyMs === 0 ? ms : this.#latencyMs + LATENCY_ALPHA * (ms - this.#latencyMs);
  }

  /** Smoothed latency in ms; 0 before any sample. */
  get latencyMs(): number {
    return this.#latencyMs;
  }
}
