/**
 * How many requests per model a miner advertises (ModelOffer.max_concurrency).
 *
 * A backend's real capacity is rarely known to its operator: vLLM batches
 * hundreds of sequences, Ollama runs a few and queues the rest, a cloud API
 * has its own rate limits. So by default the miner learns it, per model,
 * from what the backend does with the requests of every tunnel together
 * (common/aimd-limit.ts, the rule the router applies per hotkey): it starts
 * at {@link DEFAULT_INITIAL_CONCURRENCY}; while the backend is really
 * running at the limit with a first token as fast as its baseline, it
 * doubles per window of requests served until the first cut (slow start: a
 * burst is met in a few windows; there half the limit counts as running at
 * it, {@link MINER_SLOW_START_BUSY_SHARE}), then adds one per window; it cuts the limit when first tokens slow down far
 * past the baseline (a queue is building up in the backend) or the backend
 * fails under load (unavailable, overloaded, or the router's deadline passed
 * with no first token after a wait already that slow). It never goes past
 * `--max-concurrency`. With `--fixed-concurrency` the miner advertises
 * `--max-concurrency` as is.
 *
 * The router still learns its own limit below what is advertised: a larger
 * advertised number buys no traffic, it only stops being the bottleneck.
 */
import { AIMD_DEFAULTS, AimdLimit, type AimdOptions } from "../common/aimd-limit.js";

/** Where a learned limit starts: the concurrency miners used to advertise by default. */
export const DEFAULT_INITIAL_CONCURRENCY = 8;

/**
 * In slow start, the share of the limit that must be at the backend for a
 * request served to grow it. The router fills the advertised limit counting
 * each request from dispatch to its last frame; the miner sees only those at
 * its backend, not those in transit in the tunnel, which with a backend
 * answering in a millisecond or two are a large share (about half of a
 * request's time in the router in bench:api). Waiting for the whole limit at
 * the backend held the limit below the router's demand there: from 8 it
 * took three 5 s rounds of 50 connections to pass 50, one step per ~300 ms,
 * with requests queueing in the router all along. See common/aimd-limit.ts
 * for why half, and why only until the first cut.
 */
export const MINER_SLOW_START_BUSY_SHARE = 0.5;

/** How one request ended, as news about the backend's capacity. */
export type RequestOutcome =
  /** Served to the end. */
  | "served"
  /** Failed for lack of capacity: the backend was unavailable or overloaded. */
  | "overloaded"
  /**
   * The router's deadline passed. Capacity news only when no first token had
   * come and the wait was already far slower than the baseline: a short
   * deadline alone (a router sets it), or a long answer cut mid-stream, says
   * nothing about room in the backend.
   */
  | "deadline"
  /** Anything else (a cancel, a request the backend refused as invalid): no news about capacity. */
  | "other";

/** What one request reports, once each. */
export interface RequestObserver {
  /** The backend's first output came `ms` after the request was sent to it. */
  firstToken(ms: number): void;
  /** `waitedMs`: how long ago the request was sent to the backend (read for `deadline`). */
  end(outcome: RequestOutcome, waitedMs?: number): void;
}

/** The concurrency a miner advertises, per model. */
export interface ConcurrencyPolicy {
  /** Requests of `model` to advertise per tunnel now. */
  limit(model: string): number;
  /** A request of `model` starts (on any tunnel); report what happens to it. */
  start(model: string): RequestObserver;
  /** Calls `fn` when some model's limit changed. Returns an unsubscribe function. */
  onChange(fn: () => void): () => void;
}

const IGNORE: RequestObserver = Object.freeze({ firstToken: () => {}, end: () => {} });

/** `--fixed-concurrency`: the same number for every model, whatever happens. */
export class FixedConcurrency implements ConcurrencyPolicy {
  readonly #n: number;

  constructor(n: number) {
    this.#n = n;
  }

  limit(): number {
    return this.#n;
  }

  start(): RequestObserver {
    return IGNORE;
  }

  onChange(): () => void {
    return () => {};
  }
}

/** Tuning of {@link AdaptiveConcurrency}. */
export interface AdaptiveConcurrencyOptions {
  /** `--max-concurrency`: the limit never goes past it. */
  readonly max: number;
  /** Where each model's limit starts (default DEFAULT_INITIAL_CONCURRENCY, at most `max`). */
  readonly initial?: number;
  /** The learning rule's tuning (default the router's). */
  readonly aimd?: Partial<AimdOptions>;
}

/** The default: each model's limit learned from its backend (see the file comment). */
export class AdaptiveConcurrency implements ConcurrencyPolicy {
  readonly #aimd: AimdOptions;
  readonly #max: number;
  readonly #limits = new Map<string, AimdLimit>();
  readonly #inFlight = new Map<string, number>();
  /** The limit listeners last heard, per model. */
  readonly #told = new Map<string, number>();
  readonly #listeners = new Set<() => void>();

  constructor(opts: AdaptiveConcurrencyOptions) {
    this.#max = Math.max(1, opts.max);
    const initial = Math.min(this.#max, opts.initial ?? DEFAULT_INITIAL_CONCURRENCY);
    this.#aimd = {
      ...AIMD_DEFAULTS,
      slowStart: true,
      slowStartBusyShare: MINER_SLOW_START_BUSY_SHARE,
      ...opts.aimd,
      initialLimit: initial,
      maxLimit: this.#max,
    };
  }

  limit(model: string): number {
    const l = this.#limits.get(model);
    return Math.min(this.#max, l === undefined ? this.#aimd.initialLimit : l.usable);
  }

  start(model: string): RequestObserver {
    let l = this.#limits.get(model);
    if (l === undefined) {
      l = new AimdLimit(this.#aimd);
      this.#limits.set(model, l);
    }
    const limit = l;
    // This request included: what the backend was running when it was sent.
    const concurrency = (this.#inFlight.get(model) ?? 0) + 1;
    this.#inFlight.set(model, concurrency);
    const epoch = limit.epoch;
    const dispatchedUnder = limit.value;
    let healthy = true;
    let firstSeen = false;
    let ended = false;
    return {
      firstToken: (ms) => {
        if (ended) return;
        firstSeen = true;
        healthy = limit.firstToken(ms, epoch, concurrency);
        this.#tell(model);
      },
      end: (outcome, waitedMs) => {
        if (ended) return;
        ended = true;
        this.#inFlight.set(model, (this.#inFlight.get(model) ?? 1) - 1);
        if (outcome === "served") limit.succeeded(concurrency, healthy, dispatchedUnder);
        else if (outcome === "overloaded") limit.failed(epoch);
        else if (outcome === "deadline" && !firstSeen && waitedMs !== undefined && limit.slow(waitedMs)) {
          limit.failed(epoch);
        }
        this.#tell(model);
      },
    };
  }

  onChange(fn: () => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  #tell(model: string): void {
    const now = this.limit(model);
    if ((this.#told.get(model) ?? this.#aimd.initialLimit) === now) return;
    this.#told.set(model, now);
    for (const fn of this.#listeners) fn();
  }
}
