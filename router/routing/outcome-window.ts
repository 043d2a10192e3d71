/**
 * How one attempt of a user request on one hotkey ended.
 *
 * - `served`: the answer was complete (terminal Usage frame).
 * - `failed_before_output`: the miner failed before any output reached the
 *   user, so the request could be retried on another hotkey.
 * - `failed_after_output`: the miner failed after output reached the user
 *   (the answer is cut; it cannot be retried).
 * - `deadline`: the request's time budget ran out on this miner.
 * - `cancelled`: the user went away. Neutral: neither success nor failure.
 * - `refused`: the backend refused the request as invalid (400). Counted, but
 *   neutral for the breaker and the concurrency limit: a user can send such
 *   requests on purpose, and they would land on every miner in turn.
 */
export type RoutingOutcome =
  | "served"
  | "failed_before_output"
  | "failed_after_output"
  | "deadline"
  | "cancelled"
  | "refused";

/** Attempts per outcome over some span of time. */
export interface OutcomeCounts {
  readonly served: number;
  readonly failedBeforeOutput: number;
  readonly failedAfterOutput: number;
  readonly deadline: number;
  readonly cancelled: number;
  readonly refused: number;
}

/** Width of one bucket of the rolling counters. */
export const DEFAULT_OUTCOME_BUCKET_MS = 60_000;
/** Buckets kept: the counters cover the last 15 minutes (routing needs recent history only). */
export const DEFAULT_OUTCOME_BUCKETS = 15;

const FIELD: Record<RoutingOutcome, keyof OutcomeCounts> = {
  served: "served",
  failed_before_output: "failedBeforeOutput",
  failed_after_output: "failedAfterOutput",
  deadline: "deadline",
  cancelled: "cancelled",
  refused: "refused",
};

type MutableCounts = { -readonly [K in keyof OutcomeCounts]: number };

function zero(): MutableCounts {
  return { served: 0, failedBeforeOutput: 0, failedAfterOutput: 0, deadline: 0, cancelled: 0, refused: 0 };
}

/**
 * Rolling outcome counters: a ring of fixed-width time buckets. Memory is
 * bounded (a few numbers per bucket) whatever the traffic; a bucket older
 * than the ring is forgotten when its slot is reused or read.
 */
export class OutcomeWindow {
  readonly #bucketMs: number;
  /** Bucket number (time / bucketMs) held by each slot; -1 for never used. */
  readonly #ids: number[];
  readonly #counts: MutableCounts[];

  constructor(bucketMs = DEFAULT_OUTCOME_BUCKET_MS, buckets = DEFAULT_OUTCOME_BUCKETS) {
    if (!(bucketMs > 0) || !Number.isInteger(buckets) || buckets < 1) {
      throw new RangeError("an outcome window needs a positive bucket width and at least one bucket");
    }
    this.#bucketMs = bucketMs;
    this.#ids = Array.from({ length: buckets }, () => -1);
    this.#counts = Array.from({ length: buckets }, zero);
  }

  /** Span covered by the whole ring, in ms. */
  get horizonMs(): number {
    return this.#bucketMs * this.#ids.length;
  }

  /** Counts one attempt's outcome at `nowMs`. */
  add(outcome: RoutingOutcome, nowMs: number): void {
    const id = Math.floor(nowMs / this.#bucketMs);
    const slot = id % this.#ids.length;
    if (this.#ids[slot] !== id) {
      this.#ids[slot] = id;
      this.#counts[slot] = zero();
    }
    (this.#counts[slot] as MutableCounts)[FIELD[outcome]]++;
  }

  /**
   * Sums over the buckets that overlap the last `spanMs` (default: the whole
   * ring). The current bucket is partial, so a span of one bucket covers
   * between zero and one bucket width of history.
   */
  counts(nowMs: number, spanMs = this.horizonMs): OutcomeCounts {
    const now = Math.floor(nowMs / this.#bucketMs);
    const span = Math.min(this.#ids.length, Math.max(1, Math.ceil(spanMs / this.#bucketMs)));
    const sum = zero();
    for (let slot = 0; slot < this.#ids.length; slot++) {
      const id = this.#ids[slot] as number;
      if (id < 0 || id > now || now - id >= span) continue;
      const c = this.#counts[slot] as MutableCounts;
      for (const k of Object.keys(sum) as (keyof OutcomeCounts)[]) sum[k] += c[k];
    }
    return sum;
  }
}

/** Weight of a new sample in the smoothed time to first token. */
export const DEFAULT_TTFT_ALPHA = 0.2;
/** Samples kept for the median time to first token. */
export const DEFAULT_TTFT_SAMPLES = 64;

/**
 * Time-to-first-token figures of one (hotkey, model): an exponentially
 * weighted moving average (what routing uses: recent, cheap) and the median
 * of the last samples (robust to the odd long prompt, for display).
 */
export class TtftStats {
  readonly #alpha: number;
  readonly #ring: number[] = [];
  readonly #size: number;
  #next = 0;
  #ewmaMs: number | undefined;

  constructor(alpha = DEFAULT_TTFT_ALPHA, samples = DEFAULT_TTFT_SAMPLES) {
    this.#alpha = alpha;
    this.#size = Math.max(1, samples);
  }

  /** Smoothed time to first token in ms; undefined before the first sample. */
  get ewmaMs(): number | undefined {
    return this.#ewmaMs;
  }

  /** Median of the last samples in ms; undefined before the first sample. */
  get p50Ms(): number | undefined {
    if (this.#ring.length === 0) return undefined;
    const sorted = [...this.#ring].sort((a, b) => a - b);
    return sorted[Math.floor((sorted.length - 1) / 2)];
  }

  /** Adds one measured time to first token. */
  observe(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.#ewmaMs = this.#ewmaMs === undefined ? ms : this.#ewmaMs + this.#alpha * (ms - this.#ewmaMs);
    if (this.#ring.length < this.#size) this.#ring.push(ms);
    else this.#ring[this.#next] = ms;
    this.#next = (this.#next + 1) % this.#size;
  }

  /**
   * A request that never produced a token, `elapsedMs` after dispatch: its
   * time to first token is at least that. It only pushes the average up, so
   * a miner that fails fast or hangs never looks faster for it. Not a
   * sample of the median (it is no real time to first token).
   */
  observeAtLeast(elapsedMs: number): void {
    if (!Number.isFinite(elapsedMs) || this.#ewmaMs === undefined || elapsedMs <= this.#ewmaMs) return;
    this.#ewmaMs += this.#alpha * (elapsedMs - this.#ewmaMs);
  }
}
