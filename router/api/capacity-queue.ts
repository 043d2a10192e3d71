import type { Logger } from "../../common/logger.js";
import type { ModelKind } from "../../common/request-kinds.js";
import type { ApiMetrics } from "../metrics.js";
import { type Waiter, WaitQueue } from "./wait-queue.js";

/** Default of `--max-queue`: requests waiting for a slot in all, per router (see the README). */
export const DEFAULT_MAX_QUEUE = 1_000;
/** Default of `--queue-timeout-ms`: how long a request waits for a slot before its 503. */
export const DEFAULT_QUEUE_TIMEOUT_MS = 5_000;

/** One request asking to wait for a free slot of its model. */
export interface SlotRequest {
  /** Who asks (the API key's id): the capacity queue is fair across accounts. */
  readonly account: string;
  /**
   * It leaves out some miners (ones it already tried): a free slot it
   * cannot take may suit the waiter behind it.
   */
  readonly picky: boolean;
  /**
   * Takes a slot now if one suits it (chooses a miner and dispatches) and
   * says whether it did. Called synchronously by the queue; never throws.
   */
  take(): boolean;
  /**
   * A validator's probe waiting with the users (router/services/probe-queue.ts):
   * it takes its turn like them but stays out of the queue's metrics, which
   * describe user requests.
   */
  readonly probe?: boolean;
}

/** How a wait ended: a slot was taken, the queue was full, no slot came in time, the client left. */
export type WaitEnd = "served" | "full" | "timeout" | "cancelled";

/** What the capacity queue needs from the router. */
export interface CapacityQueueDeps {
  /** Calls the listener after anything that may free a slot (TunnelHub.onChange). */
  readonly onChange: (listener: () => void) => () => void;
  readonly clock: () => number;
  readonly metrics: Pick<ApiMetrics, "queueDepth" | "queueWait" | "queueRejected">;
  readonly logger: Logger;
}

/** Tuning of the capacity queue (`--max-queue`, `--queue-timeout-ms`). */
export interface CapacityQueueOptions {
  /** Requests waiting at most, all models together; 0 turns waiting off. */
  readonly maxQueue: number;
  /** Longest wait for a slot, ms (never past the request's own deadline); 0 turns waiting off. */
  readonly queueTimeoutMs: number;
}

interface Entry extends Waiter {
  readonly req: SlotRequest;
  readonly line: string;
  readonly model: string;
  readonly sinceMs: number;
  readonly done: (end: WaitEnd) => void;
}

/**
 * Requests waiting for a miner slot while every miner of their model is
 * busy. The order is WaitQueue's (fair across accounts, FIFO within one);
 * this class adds the wake-ups: whenever the tunnel hub reports a change
 * (a call ended, a miner connected or raised its concurrency), one drain
 * runs in a microtask and hands free slots to waiters in that order. No
 * polling: one timer for the whole queue, set to the earliest deadline,
 * ends waits that ran out.
 */
export class CapacityQueue {
  readonly #q: WaitQueue<Entry>;
  readonly #entries = new Map<SlotRequest, Entry>();
  #drainQueued = false;
  #timer: NodeJS.Timeout | undefined;
  #timerAtMs = Number.POSITIVE_INFINITY;

  constructor(
    private readonly deps: CapacityQueueDeps,
    private readonly opts: CapacityQueueOptions,
  ) {
    this.#q = new WaitQueue(opts.maxQueue);
    deps.onChange(() => this.#wake());
  }

  /** Whether requests may wait at all (neither setting is 0). */
  get enabled(): boolean {
    return this.opts.maxQueue > 0 && this.opts.queueTimeoutMs > 0;
  }

  /** Whether requests of `model` and `kind` wait already: a new one queues behind them, not ahead. */
  ahead(model: string, kind: ModelKind): boolean {
    return this.waiting(model, kind) > 0;
  }

  /** How many requests of `model` and `kind` wait now. */
  waiting(model: string, kind: ModelKind): number {
    return this.#q.depth(lineOf(model, kind));
  }

  /**
   * Waits for a slot of `model`: resolves "served" once `req.take()` took
   * one, "full" at once when `maxQueue` requests wait already, "timeout"
   * after `queueTimeoutMs` (or at `requestDeadlineMs`, if sooner),
   * "cancelled" after `leave(req)`.
   */
  wait(model: string, kind: ModelKind, req: SlotRequest, requestDeadlineMs: number): Promise<WaitEnd> {
    const d = this.deps;
    const now = d.clock();
    const line = lineOf(model, kind);
    return new Promise<WaitEnd>((done) => {
      const deadlineMs = Math.min(now + this.opts.queueTimeoutMs, requestDeadlineMs);
      const e: Entry = { account: req.account, deadlineMs, req, line, model, sinceMs: now, done };
      if (!this.#q.add(line, e)) {
        if (req.probe !== true) d.metrics.queueRejected.inc({ model, reason: "full" });
        done("full");
        return;
      }
      this.#entries.set(req, e);
      if (req.probe !== true) d.metrics.queueDepth.inc({ model });
      this.#arm(deadlineMs);
      // It may have queued only behind others, with a slot free for it already.
      this.#wake();
    });
  }

  /** The request's client went away: it leaves the queue at once (its wait resolves "cancelled"). */
  leave(req: SlotRequest): void {
    const e = this.#entries.get(req);
    if (e === undefined) return;
    this.#q.remove(e.line, e);
    this.#end(e, "cancelled");
  }

  #wake(): void {
    if (this.#q.size === 0 || this.#drainQueued) return;
    this.#drainQueued = true;
    queueMicrotask(() => this.#drain());
  }

  /** Hands out the free slots. Changes the drain itself causes (its dispatches) queue no second drain. */
  #drain(): void {
    try {
      const now = this.deps.clock();
      for (const line of [...this.#q.lines()]) this.#drainLine(line, now);
    } finally {
      this.#drainQueued = false;
    }
  }

  #drainLine(line: string, now: number): void {
    let skip: Set<Entry> | undefined;
    for (;;) {
      const e = this.#q.next(line, skip);
      if (e === undefined) return;
      if (e.deadlineMs <= now) {
        // Its timer has not fired yet: it must not get a slot past its deadline.
        this.#q.remove(line, e);
        this.#end(e, "timeout");
        continue;
      }
      let took: boolean;
      try {
        took = e.req.take();
      } catch (err) {
        // A bug in the taker: that request ends, the others keep their places.
        this.deps.logger.error({ err }, "a queued request failed to take a slot");
        this.#q.remove(line, e);
        this.#end(e, "cancelled");
        continue;
      }
      if (took) {
        this.#q.served(line, e);
        this.#end(e, "served");
        continue;
      }
      // Nothing free suits a waiter that excludes no miner: nothing free suits the rest either.
      if (!e.req.picky) return;
      skip ??= new Set();
      skip.add(e);
    }
  }

  #end(e: Entry, end: WaitEnd): void {
    const m = this.deps.metrics;
    this.#entries.delete(e.req);
    if (e.req.probe !== true) {
      m.queueDepth.dec({ model: e.model });
      m.queueWait.observe({ model: e.model, outcome: end }, (this.deps.clock() - e.sinceMs) / 1000);
      if (end === "timeout") m.queueRejected.inc({ model: e.model, reason: "timeout" });
    }
    e.done(end);
  }

  /** Makes sure the queue's one timer fires by `deadlineMs`. */
  #arm(deadlineMs: number): void {
    if (deadlineMs >= this.#timerAtMs) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAtMs = deadlineMs;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, deadlineMs - this.deps.clock()));
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = undefined;
    this.#timerAtMs = Number.POSITIVE_INFINITY;
    for (const { waiter } of this.#q.expire(this.deps.clock())) this.#end(waiter, "timeout");
    const next = this.#q.nextDeadlineMs();
    if (next !== undefined) this.#arm(next);
  }
}

/** The queue line of a model and request kind (a kind never contains a colon). */
function lineOf(model: string, kind: ModelKind): string {
  return `${kind}:${model}`;
}
