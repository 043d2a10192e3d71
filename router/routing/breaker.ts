/**
 * Circuit breaker of one (hotkey, model) for user requests.
 *
 * Closed: the hotkey is in rotation. It opens after `consecutiveFailures`
 * failed user requests in a row, or when most of its recent requests failed
 * (a miner failing three in four never fails three in a row often, but is
 * still no use to users). Open: out of rotation for base·2^k ms (k = trips
 * since it was last healthy, capped), so a miner that keeps failing costs
 * ever fewer user requests. Half-open, once that time is up: exactly one
 * trial request; success closes the breaker, failure opens it again for
 * twice as long.
 *
 * Validator probes do not pass through here: a backend that answers probes
 * but fails users is still taken out.
 */

/** Failures in a row that open the breaker. */
export const DEFAULT_BREAKER_CONSECUTIVE_FAILURES = 3;
/** First open period, in ms. */
export const DEFAULT_BREAKER_BASE_OPEN_MS = 5_000;
/** Longest open period, in ms. */
export const DEFAULT_BREAKER_MAX_OPEN_MS = 5 * 60_000;
/** The failure-ratio rule needs at least this many recent requests. */
export const DEFAULT_BREAKER_MIN_REQUESTS = 10;
/** Recent failure ratio at or above which the breaker opens. */
export const DEFAULT_BREAKER_FAILURE_RATIO = 0.5;
/** Successes in a row after which the back-off starts again from its base. */
export const DEFAULT_BREAKER_HEAL_SUCCESSES = 10;

/** Tuning of the breaker. */
export interface BreakerOptions {
  readonly consecutiveFailures: number;
  readonly baseOpenMs: number;
  readonly maxOpenMs: number;
  readonly minRequests: number;
  readonly failureRatio: number;
  readonly healSuccesses: number;
}

/** Defaults of the breaker. */
export const BREAKER_DEFAULTS: BreakerOptions = Object.freeze({
  consecutiveFailures: DEFAULT_BREAKER_CONSECUTIVE_FAILURES,
  baseOpenMs: DEFAULT_BREAKER_BASE_OPEN_MS,
  maxOpenMs: DEFAULT_BREAKER_MAX_OPEN_MS,
  minRequests: DEFAULT_BREAKER_MIN_REQUESTS,
  failureRatio: DEFAULT_BREAKER_FAILURE_RATIO,
  healSuccesses: DEFAULT_BREAKER_HEAL_SUCCESSES,
});

/** Where a breaker is. `half_open`: its back-off is over, a trial may go. */
export type BreakerState = "closed" | "open" | "half_open";

/** Recent requests of the hotkey that count for the ratio rule. */
export interface RecentRequests {
  readonly failures: number;
  readonly total: number;
}

/** The breaker of one (hotkey, model). Times are passed in. */
export class CircuitBreaker {
  readonly #o: BreakerOptions;
  #open = false;
  #openUntilMs = 0;
  /** Trips since the hotkey was last healthy: the exponent of the back-off. */
  #trips = 0;
  #consecutiveFailures = 0;
  #consecutiveSuccesses = 0;
  #trialInFlight = false;

  constructor(opts: BreakerOptions = BREAKER_DEFAULTS) {
    this.#o = opts;
  }

  /** The state at `nowMs`. */
  state(nowMs: number): BreakerState {
    if (!this.#open) return "closed";
    return nowMs >= this.#openUntilMs ? "half_open" : "open";
  }

  /** Until when an open breaker keeps the hotkey out (ms); 0 when closed. */
  get openUntilMs(): number {
    return this.#open ? this.#openUntilMs : 0;
  }

  /** Failed user requests in a row. */
  get consecutiveFailures(): number {
    return this.#consecutiveFailures;
  }

  /** Whether the hotkey may be given a request now: closed, or half-open with no trial out. */
  admits(nowMs: number): boolean {
    const s = this.state(nowMs);
    return s === "closed" || (s === "half_open" && !this.#trialInFlight);
  }

  /** A request goes to the hotkey. Returns true when it is the half-open trial. */
  started(nowMs: number): boolean {
    if (this.state(nowMs) !== "half_open" || this.#trialInFlight) return false;
    this.#trialInFlight = true;
    return true;
  }

  /** A request was served. A successful trial closes the breaker. */
  succeeded(trial: boolean): void {
    this.#consecutiveFailures = 0;
    this.#consecutiveSuccesses++;
    if (trial) {
      this.#trialInFlight = false;
      this.#open = false;
    }
    // A success from before the trip does not close an open breaker: the trial decides.
    if (!this.#open && this.#consecutiveSuccesses >= this.#o.healSuccesses) this.#trips = 0;
  }

  /**
   * A request failed at `nowMs`. Opens the breaker when the rules say so, or
   * again (for longer) when it was the trial. Failures of requests sent
   * before the breaker opened do not extend it.
   */
  failed(trial: boolean, nowMs: number, recent: RecentRequests): void {
    this.#consecutiveFailures++;
    this.#consecutiveSuccesses = 0;
    if (trial) {
      this.#trialInFlight = false;
      this.#trip(nowMs);
      return;
    }
    if (this.#open) return;
    const ratioBad =
      recent.total >= this.#o.minRequests && recent.failures >= recent.total * this.#o.failureRatio;
    if (this.#consecutiveFailures >= this.#o.consecutiveFailures || ratioBad) this.#trip(nowMs);
  }

  /** A request ended neither well nor badly (the user left): a trial frees its place. */
  neutral(trial: boolean): void {
    if (trial) this.#trialInFlight = false;
  }

  #trip(nowMs: number): void {
    const backoff = this.#o.baseOpenMs * 2 ** Math.min(this.#trips, 30);
    this.#open = true;
    this.#openUntilMs = nowMs + Math.min(this.#o.maxOpenMs, backoff);
    this.#trips++;
  }
}
