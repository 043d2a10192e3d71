import { type Clock, systemClock, type Timer } from "../../common/clock.js";
import type { Logger } from "../../common/logger.js";
import { silentLogger } from "../../common/logger.js";
import { isValidEvent, type RecordResult, type UsageLedger } from "../ledger/ledger.js";
import type { UsageEvent, UsageSink } from "./event.js";
import type { UsageSpool } from "./spool.js";

/**
 * The router's UsageSink: takes finished requests from the request path and
 * gets them into the ledger.
 *
 * - `record()` only pushes to an in-memory queue and schedules a flush on a
 *   later tick: it never throws and never waits on I/O. `recordDurably()`
 *   does the same and resolves once the event's batch is in the ledger or
 *   the spool: until then a SIGKILL would lose it.
 * - A flush sends up to `batchSize` events in one ledger call (the Redis
 *   ledger pipelines one script call per miner); at most `maxInFlight`
 *   calls run at once, so batches grow by themselves under load.
 * - When the ledger fails (Redis down, timeout), the batch goes to the
 *   durable spool and so does every later event, to keep their order. The
 *   spool is replayed in order with growing pauses (`retryMinMs` ..
 *   `retryMaxMs`) until it is empty, then events go straight to the ledger
 *   again. Replay is idempotent (the ledger ignores events it counted, by
 *   origin/seq or request id).
 * - Without a spool (the embedded ledger), a failed batch stays queued and
 *   is retried.
 * - The queue is bounded (`maxQueued`): past it events are dropped and
 *   counted in `dropped`, and the recorder reports not ready.
 */

/** Counters and gauges for /readyz and /metrics. */
export interface RecorderStats {
  counted: number;
  duplicates: number;
  expired: number;
  invalid: number;
  /** Events lost because the queue or the spool was full or failing. */
  dropped: number;
  /** Events written to the spool. */
  spooled: number;
  /** Events read back from the spool and written to the ledger. */
  replayed: number;
  /** Ledger calls that failed. */
  ledgerErrors: number;
  /** Events waiting in memory. */
  queued: number;
  /** Events waiting in the spool. */
  spoolDepth: number;
  /** True while events go to the spool instead of the ledger. */
  degraded: boolean;
}

/**
 * A second ledger call starts while one is in flight only once this many
 * events wait: a few events are cheaper to send with the next batch than in
 * a call of their own (each call has a fixed cost in the router and Redis).
 */
export const OVERLAP_MIN_EVENTS = 64;
/** Events per ledger call. */
export const DEFAULT_BATCH_SIZE = 5000;
/** Ledger calls in flight at once. */
export const DEFAULT_MAX_IN_FLIGHT = 2;
/** Events held in memory at most; beyond, new events are dropped (counted and logged). */
export const DEFAULT_MAX_QUEUED = 200_000;
/** A ledger call taking longer counts as failed. */
export const DEFAULT_LEDGER_TIMEOUT_MS = 5000;
/** First and longest wait before retrying a failed ledger. */
export const DEFAULT_RETRY_MIN_MS = 100;
export const DEFAULT_RETRY_MAX_MS = 5000;

/** What the recorder is built from. */
export interface UsageRecorderOptions {
  readonly ledger: UsageLedger;
  /** Durable fallback; undefined for the embedded ledger. */
  readonly spool?: UsageSpool | undefined;
  /** Arrival times, the ledger's clock, retry pauses and call timeouts; default the system clock. */
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Events per ledger call (default {@link DEFAULT_BATCH_SIZE}). */
  readonly batchSize?: number;
  /** Ledger calls in flight at once (default {@link DEFAULT_MAX_IN_FLIGHT}). */
  readonly maxInFlight?: number;
  /** Events held in memory at most (default {@link DEFAULT_MAX_QUEUED}). */
  readonly maxQueued?: number;
  /** A ledger call taking longer counts as failed (default {@link DEFAULT_LEDGER_TIMEOUT_MS}). */
  readonly ledgerTimeoutMs?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

/** Implements UsageSink over a ledger and a spool. */
export class UsageRecorder implements UsageSink {
  readonly #ledger: UsageLedger;
  readonly #spool: UsageSpool | undefined;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #batchSize: number;
  readonly #maxQueued: number;
  readonly #timeoutMs: number;
  readonly #retryMinMs: number;
  readonly #retryMaxMs: number;
  /** Queued events are #queue[#head..]; taking a batch moves #head (no copying of the rest). */
  #queue: UsageEvent[] = [];
  /** Arrival time of each queued event (parallel to #queue), for the lag. */
  #arrivals: number[] = [];
  #head = 0;
  /** Arrival of the oldest event of each batch in flight. */
  readonly #inFlightSince = new Map<Promise<void>, number>();
  readonly #maxInFlight: number;
  #degraded: boolean;
  /** Arrival of the oldest event that went to the spool in this degraded spell. */
  #degradedSince: number | undefined;
  #running = false;
  #scheduled = false;
  #retryTimer: Timer | undefined;
  #retryMs: number;
  #closed = false;
  #waiters: (() => void)[] = [];
  /** Events recorded durably whose batch is not yet in the ledger or the spool, and who waits. */
  readonly #durable = new Map<UsageEvent, () => void>();
  #settleWaiters: (() => void)[] = [];
  #stats = { counted: 0, duplicates: 0, expired: 0, invalid: 0, dropped: 0, spooled: 0, replayed: 0 };
  #ledgerErrors = 0;

  constructor(options: UsageRecorderOptions) {
    this.#ledger = options.ledger;
    this.#spool = options.spool;
    this.#clock = options.clock ?? systemClock;
    this.#log = options.logger ?? silentLogger();
    this.#batchSize = options.batchSize ?? DEFAULT_BATCH_SIZE;
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.#maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.#timeoutMs = options.ledgerTimeoutMs ?? DEFAULT_LEDGER_TIMEOUT_MS;
    this.#retryMinMs = options.retryMinMs ?? DEFAULT_RETRY_MIN_MS;
    this.#retryMaxMs = options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
    this.#retryMs = this.#retryMinMs;
    // A spool left by a previous run is replayed first, in order.
    this.#degraded = (this.#spool?.depth ?? 0) > 0;
    if (this.#degraded) {
      this.#degradedSince = this.#clock.now();
      this.#schedule();
    }
  }

  record(event: UsageEvent): void {
    this.#accept(event);
  }

  recordDurably(event: UsageEvent): Promise<void> {
    if (!this.#accept(event)) return Promise.resolve();
    return new Promise((resolve) => this.#durable.set(event, resolve));
  }

  /** Queues `event`; false when it is refused (malformed) or dropped (full or closed). */
  #accept(event: UsageEvent): boolean {
    // Refused here, not later: a malformed event must never reach the spool.
    if (!isValidEvent(event)) {
      this.#stats.invalid++;
      return false;
    }
    if (this.#closed || this.#queued >= this.#maxQueued) {
      this.#stats.dropped++;
      if (this.#stats.dropped === 1 || this.#stats.dropped % 10_000 === 0) {
        this.#log.error({ dropped: this.#stats.dropped }, "usage recorder full or closed: event dropped");
      }
      return false;
    }
    this.#queue.push(event);
    this.#arrivals.push(this.#clock.now());
    this.#schedule();
    return true;
  }

  /** Tells whoever waits on the events of `batch` that they are durable (or lost for good). */
  #settle(batch: readonly UsageEvent[]): void {
    if (this.#durable.size === 0) return;
    for (const e of batch) {
      const resolve = this.#durable.get(e);
      if (resolve === undefined) continue;
      this.#durable.delete(e);
      resolve();
    }
  }

  /** Current counters. */
  stats(): RecorderStats {
    return {
      ledgerErrors: this.#ledgerErrors,
      queued: this.#queued,
      spoolDepth: this.#spool?.depth ?? 0,
      degraded: this.#degraded,
      ...this.#stats,
    };
  }

  /** Events held in the durable spool (for /metrics and /readyz). */
  spoolDepth(): number {
    return this.#spool?.depth ?? 0;
  }

  /**
   * How far the ledger is behind, in ms: the age of the oldest event not yet
   * written to it (queued, in flight, or in the spool); 0 when caught up.
   */
  lagMs(): number {
    const now = this.#clock.now();
    let oldest = this.#arrivals[this.#head] ?? Number.POSITIVE_INFINITY;
    for (const t of this.#inFlightSince.values()) oldest = Math.min(oldest, t);
    if (this.#degraded) oldest = Math.min(oldest, this.#degradedSince ?? now);
    return Number.isFinite(oldest) ? Math.max(0, now - oldest) : 0;
  }

  /** Ready while events reach the ledger or the spool and nothing is being dropped. */
  ready(): boolean {
    return !this.#closed && this.#queued < this.#maxQueued;
  }

  /** Resolves when nothing is queued, in flight or spooled (everything is in the ledger). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /**
   * Resolves when no event is queued or in flight: each recorded event is
   * then in the ledger or durably in the spool.
   */
  settled(): Promise<void> {
    if (!this.#running && this.#queued === 0) return Promise.resolve();
    return new Promise((resolve) => this.#settleWaiters.push(resolve));
  }

  /** Stops taking events and writes what is queued to the ledger, or else to the spool. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#clock.clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    while (this.#running) await new Promise((r) => setImmediate(r));
    if (this.#queued > 0) {
      const batch = this.#take();
      if (this.#degraded || !(await this.#toLedger(batch))) await this.#toSpool(batch);
    }
    // Nobody waits on a closed recorder: what was not written by now never will be.
    for (const resolve of this.#durable.values()) resolve();
    this.#durable.clear();
  }

  #isIdle(): boolean {
    return !this.#running && this.#queued === 0 && !this.#degraded;
  }

  #schedule(): void {
    if (this.#scheduled || this.#running || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#pump();
    });
  }

  get #queued(): number {
    return this.#queue.length - this.#head;
  }

  #take(): UsageEvent[] {
    const n = Math.min(this.#batchSize, this.#queued);
    const batch = this.#queue.slice(this.#head, this.#head + n);
    this.#head += n;
    if (this.#head >= this.#queue.length) {
      this.#queue = [];
      this.#arrivals = [];
      this.#head = 0;
    } else if (this.#head > 65_536 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head);
      this.#arrivals = this.#arrivals.slice(this.#head);
      this.#head = 0;
    }
    return batch;
  }

  async #pump(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    const inFlight = new Set<Promise<void>>();
    try {
      for (;;) {
        if (this.#closed) break;
        if (!this.#degraded && this.#retryTimer === undefined) {
          if (
            this.#queued === 0 ||
            inFlight.size >= this.#maxInFlight ||
            (inFlight.size > 0 && this.#queued < OVERLAP_MIN_EVENTS)
          ) {
            if (inFlight.size === 0) break;
            await Promise.race(inFlight);
            continue;
          }
          // Up to #maxInFlight direct batches overlap, so the router encodes
          // the next batch while Redis runs the previous one. Order between
          // them does not matter: the ledger is additive and idempotent.
          const since = this.#arrivals[this.#head] ?? this.#clock.now();
          const p = this.#direct(this.#take(), since).finally(() => {
            inFlight.delete(p);
            this.#inFlightSince.delete(p);
          });
          inFlight.add(p);
          this.#inFlightSince.set(p, since);
          continue;
        }
        // Degraded or waiting to retry: settle what is in flight first.
        if (inFlight.size > 0) {
          await Promise.all(inFlight);
          continue;
        }
        if (!this.#degraded) break; // no spool: the retry timer restarts the pump
        // Degraded: keep order by spooling new events behind the old ones.
        if (this.#queued > 0) {
          await this.#toSpool(this.#take());
          continue;
        }
        if (this.#retryTimer !== undefined) break;
        if (!(await this.#replayOne())) {
          this.#armRetry();
          break;
        }
      }
    } catch (err) {
      // Unexpected (a bug, not an I/O failure): keep the process alive, retry later.
      this.#log.error({ err }, "usage recorder loop failed");
      this.#armRetry();
    } finally {
      await Promise.allSettled(inFlight);
      this.#running = false;
    }
    if (this.#queued === 0) for (const w of this.#settleWaiters.splice(0)) w();
    if (this.#isIdle()) for (const w of this.#waiters.splice(0)) w();
    else if (this.#queued > 0 && this.#retryTimer === undefined) this.#schedule();
  }

  /** One direct batch: to the ledger, else to the spool (or back to the queue without one). */
  async #direct(batch: UsageEvent[], since: number): Promise<void> {
    if (await this.#toLedger(batch)) return;
    if (this.#spool === undefined) {
      // No spool: put the batch back in front and retry later.
      this.#queue = batch.concat(this.#queue.slice(this.#head));
      this.#arrivals = new Array<number>(batch.length).fill(since).concat(this.#arrivals.slice(this.#head));
      this.#head = 0;
      this.#armRetry();
      return;
    }
    if (!this.#degraded) {
      this.#degraded = true;
      this.#degradedSince = since;
    } else {
      this.#degradedSince = Math.min(this.#degradedSince ?? since, since);
    }
    await this.#toSpool(batch);
  }

  /** Replays one spool batch; false when the ledger failed. Leaves degraded mode when empty. */
  async #replayOne(): Promise<boolean> {
    const spool = this.#spool;
    if (spool === undefined) return true;
    const batch = await spool.read(this.#batchSize);
    if (batch === undefined) {
      this.#degraded = false;
      this.#degradedSince = undefined;
      this.#retryMs = this.#retryMinMs;
      this.#log.info("usage spool replayed; writing to the ledger again");
      return true;
    }
    if (batch.events.length > 0 && !(await this.#toLedger(batch.events))) return false;
    await spool.ack(batch);
    this.#stats.replayed += batch.events.length;
    this.#retryMs = this.#retryMinMs;
    return true;
  }

  #armRetry(): void {
    if (this.#retryTimer !== undefined || this.#closed) return;
    const delay = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMaxMs, this.#retryMs * 2);
    this.#retryTimer = this.#clock.setTimeout(
      () => {
        this.#retryTimer = undefined;
        void this.#pump();
      },
      delay,
      { unref: true },
    );
  }

  async #toLedger(batch: readonly UsageEvent[]): Promise<boolean> {
    let timer: Timer | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = this.#clock.setTimeout(() => reject(new Error("ledger call timed out")), this.#timeoutMs);
      });
      const r: RecordResult = await Promise.race([this.#ledger.record(batch, this.#clock.now()), timeout]);
      this.#stats.counted += r.counted;
      this.#stats.duplicates += r.duplicates;
      this.#stats.expired += r.expired;
      this.#stats.invalid += r.invalid;
      if (r.invalid > 0) this.#log.warn({ invalid: r.invalid }, "malformed usage events were not counted");
      this.#settle(batch);
      return true;
    } catch (err) {
      this.#ledgerErrors++;
      if (this.#ledgerErrors === 1 || !this.#degraded) this.#log.warn({ err }, "usage ledger write failed");
      return false;
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  async #toSpool(batch: readonly UsageEvent[]): Promise<void> {
    const spool = this.#spool;
    if (spool === undefined) {
      this.#settle(batch);
      return;
    }
    try {
      await spool.append(batch);
      this.#stats.spooled += batch.length;
    } catch (err) {
      this.#stats.dropped += batch.length;
      this.#log.error({ err, events: batch.length }, "usage spool append failed: events lost");
    } finally {
      this.#settle(batch);
    }
  }
}
