/**
 * Learned concurrency by additive increase and multiplicative decrease
 * (AIMD): the router's limit per (hotkey, model) (router/routing/book.ts)
 * and a miner's own limit per model on its backend
 * (miner/adaptive-concurrency.ts). Below, "hotkey" is the router's case;
 * for a miner, read its backend. After TCP congestion avoidance and the
 * adaptive concurrency limiters of Netflix (concurrency-limits) and Envoy:
 *
 * - the limit grows by 1/limit per request completed while the hotkey was
 *   really running at its limit with a healthy time to first token, so one
 *   full window of healthy requests adds one (a hotkey that is never busy
 *   never proves it could do more: growth needs real use);
 * - it shrinks by a factor on a failure, a deadline cut or a time to first
 *   token far above the hotkey's baseline (its queue is building up);
 * - it shrinks at most once per window: requests dispatched before the last
 *   cut saw the old limit, so their bad news is already priced in (TCP cuts
 *   once per round trip for the same reason).
 *
 * Past the limit a hotkey only takes overflow (requests nobody within their
 * limit can take). Until its limit is first cut, overflow may fill it up to
 * its advertised ceiling, so a burst on a fresh router is served rather than
 * refused (TCP's slow start plays the same part); once cut, the limit is
 * known to matter and overflow stops at `overflowFactor` times it, so a
 * miner that overstates its capacity queues no more than that.
 *
 * The miner's advertised concurrency is only a ceiling, applied by the
 * picker. Growth needs a request completed at concurrency >= floor(limit),
 * and concurrency never exceeds the ceiling, so the limit cannot run more
 * than one above it.
 *
 * In slow start, "at its limit" may be a share of it
 * (`slowStartBusyShare`). The router counts a request from dispatch to its
 * last frame, exactly what its limit bounds: the whole limit. A miner counts
 * only the requests at its backend, while the router it advertises to fills
 * the limit from its own side: the requests in transit in the tunnel are
 * missing from the miner's count, and with a backend that answers in a
 * millisecond or two they are a large share, so the backend rarely holds
 * the whole limit at once and a slow start that waited for that would stall
 * below what the router sends. Half the limit is TCP's test of a window
 * really in use in slow start (Linux' tcp_is_cwnd_limited). Once the limit
 * has been cut it is known to matter, and growth needs the whole of it
 * again: otherwise requests that never test the limit would keep pushing
 * it past a backend's slots (transit is a small share of a model's answer).
 */

/** Usable concurrency of a hotkey never measured: low, so claims are not believed up front. */
export const DEFAULT_INITIAL_LIMIT = 2;
/** The limit never goes below this: a hotkey in rotation can always take one request. */
export const DEFAULT_MIN_LIMIT = 1;
/** Factor applied on a failure or a deadline cut (a hard signal). */
export const DEFAULT_FAILURE_DECREASE = 0.5;
/** Factor applied on a slow first token (a soft, noisier signal: prompts differ in length). */
export const DEFAULT_SLOW_DECREASE = 0.8;
/** A first token slower than baseline × this (plus the slack) counts as slow. */
export const DEFAULT_SLOW_TTFT_RATIO = 3;
/** Absolute slack on the slow test, in ms, so that jitter on a fast baseline is not a signal. */
export const DEFAULT_SLOW_TTFT_SLACK_MS = 250;
/**
 * How fast the baseline follows samples above it. The baseline is a slowly
 * rising minimum: it drops to any faster sample at once and creeps up on
 * samples taken at low concurrency (at most half the limit), so a backend
 * that became slower for good is re-baselined instead of being held at the
 * minimum limit forever, while a queue that builds up under load never
 * becomes the new normal (Envoy measures its minRTT at low concurrency for
 * the same reason).
 */
export const DEFAULT_BASELINE_RISE = 0.02;
/** Overflow a hotkey whose limit was ever cut may take, as a multiple of its limit. */
export const DEFAULT_OVERFLOW_FACTOR = 2;

/** Tuning of the learned concurrency. */
export interface AimdOptions {
  readonly initialLimit: number;
  readonly minLimit: number;
  readonly failureDecrease: number;
  readonly slowDecrease: number;
  readonly slowTtftRatio: number;
  readonly slowTtftSlackMs: number;
  readonly baselineRise: number;
  readonly overflowFactor: number;
  /**
   * In slow start, the share of the limit a request must have seen in
   * flight (itself included) for its success to grow the limit (default 1:
   * the whole limit, as after the first cut).
   */
  readonly slowStartBusyShare?: number;
  /** The limit never grows past this (the router's ceiling is applied by its picker instead). */
  readonly maxLimit?: number;
  /**
   * Until the limit is first cut, grow by one per request completed at the
   * limit (doubling per window, TCP's slow start) instead of by 1/limit. The
   * router has overflow for that part instead; a miner has nothing else to
   * meet a burst with.
   */
  readonly slowStart?: boolean;
}

/** Defaults of the learned concurrency. */
export const AIMD_DEFAULTS: AimdOptions = Object.freeze({
  initialLimit: DEFAULT_INITIAL_LIMIT,
  minLimit: DEFAULT_MIN_LIMIT,
  failureDecrease: DEFAULT_FAILURE_DECREASE,
  slowDecrease: DEFAULT_SLOW_DECREASE,
  slowTtftRatio: DEFAULT_SLOW_TTFT_RATIO,
  slowTtftSlackMs: DEFAULT_SLOW_TTFT_SLACK_MS,
  baselineRise: DEFAULT_BASELINE_RISE,
  overflowFactor: DEFAULT_OVERFLOW_FACTOR,
});

/** The AIMD state of one (hotkey, model). No clock: callers pass what happened. */
export class AimdLimit {
  readonly #o: AimdOptions;
  #limit: number;
  #baselineMs: number | undefined;
  /** Bumped on every decrease; a request remembers the epoch it was dispatched in. */
  #epoch = 0;
  #everCut = false;

  constructor(opts: AimdOptions = AIMD_DEFAULTS) {
    this.#o = opts;
    this.#limit = Math.max(opts.minLimit, opts.initialLimit);
  }

  /** The learned limit (fractional: growth comes in steps of 1/limit). */
  get value(): number {
    return this.#limit;
  }

  /** Requests the hotkey may run at once by what it has shown (before the advertised ceiling). */
  get usable(): number {
    return Math.max(this.#o.minLimit, Math.floor(this.#limit));
  }

  /**
   * Most requests the hotkey may run when it only takes overflow (before the
   * ceiling): unbounded until the limit is first cut, then a multiple of it.
   */
  get overflow(): number {
    return this.#everCut ? this.usable * this.#o.overflowFactor : Number.POSITIVE_INFINITY;
  }

  /** The current window; pass it back with the request's outcome. */
  get epoch(): number {
    return this.#epoch;
  }

  /** Whether a first token `ttftMs` after dispatch is far slower than the baseline (none: never). */
  slow(ttftMs: number): boolean {
    const base = this.#baselineMs;
    return base !== undefined && ttftMs > base * this.#o.slowTtftRatio + this.#o.slowTtftSlackMs;
  }

  /** The time-to-first-token baseline in ms (a slowly rising minimum); undefined before a sample. */
  get baselineMs(): number | undefined {
    return this.#baselineMs;
  }

  /**
   * A first token came `ttftMs` after dispatch for a request dispatched in
   * `epoch` when the hotkey had `concurrency` requests in flight (this one
   * included). Updates the baseline, shrinks the limit when the token was
   * far slower than the baseline, and says whether it was healthy.
   */
  firstToken(ttftMs: number, epoch: number, concurrency: number): boolean {
    const base = this.#baselineMs;
    const healthy = !this.slow(ttftMs);
    if (base === undefined || ttftMs < base) this.#baselineMs = ttftMs;
    else if (concurrency <= Math.max(1, Math.floor(this.#limit / 2))) {
      this.#baselineMs = base + this.#o.baselineRise * (ttftMs - base);
    }
    if (!healthy) this.#decrease(this.#o.slowDecrease, epoch);
    return healthy;
  }

  /**
   * A request completed. `concurrency` is how many requests the hotkey had in
   * flight, this one included, when it was dispatched; `healthy` whether its
   * first token was. Grows the limit only when the hotkey was at its limit:
   * the limit now, or in slow start (`slowStartBusyShare` of) the limit it
   * was dispatched under (`dispatchedUnder`, when given), since there every
   * request served at the limit grows it and the limit has moved while the
   * request ran.
   */
  succeeded(concurrency: number, healthy: boolean, dispatchedUnder?: number): void {
    const slowStart = this.#o.slowStart === true && !this.#everCut;
    const limit = slowStart && dispatchedUnder !== undefined ? dispatchedUnder : this.#limit;
    const share = slowStart ? (this.#o.slowStartBusyShare ?? 1) : 1;
    if (!healthy || concurrency < Math.floor(limit * share)) return;
    const step = slowStart ? 1 : 1 / this.#limit;
    this.#limit = Math.min(this.#o.maxLimit ?? Number.POSITIVE_INFINITY, this.#limit + step);
  }

  /** A request dispatched in `epoch` failed or was cut by the deadline. */
  failed(epoch: number): void {
    this.#decrease(this.#o.failureDecrease, epoch);
  }

  #decrease(factor: number, epoch: number): void {
    if (epoch !== this.#epoch) return;
    this.#limit = Math.max(this.#o.minLimit, this.#limit * factor);
    this.#epoch++;
    this.#everCut = true;
  }
}
