import { AIMD_DEFAULTS, AimdLimit, type AimdOptions } from "../../common/aimd-limit.js";
import type { ModelKind } from "../../common/request-kinds.js";
import type { SessionView } from "../tunnel/types.js";
import { BREAKER_DEFAULTS, type BreakerOptions, type BreakerState, CircuitBreaker } from "./breaker.js";
import {
  DEFAULT_OUTCOME_BUCKET_MS,
  DEFAULT_OUTCOME_BUCKETS,
  type OutcomeCounts,
  OutcomeWindow,
  type RoutingOutcome,
  TtftStats,
} from "./outcome-window.js";
import {
  type HotkeyRoute,
  PICKER_DEFAULTS,
  type PickerOptions,
  pick,
  pickTrial,
  type RandomSource,
  wouldServe,
} from "./picker.js";

/** Span of recent outcomes the breaker's failure-ratio rule looks at. */
export const DEFAULT_BREAKER_WINDOW_MS = 2 * 60_000;
/** A (hotkey, model) with nothing in flight and no attempt for this long is forgotten. */
export const DEFAULT_FORGET_IDLE_MS = 60 * 60_000;

/** Dependencies and tuning of a RoutingBook. */
export interface RoutingBookOptions {
  /** Monotonic clock in ms (performance.now in the router). */
  readonly now: () => number;
  readonly random: RandomSource;
  readonly picker?: Partial<PickerOptions>;
  readonly limits?: Partial<AimdOptions>;
  readonly breaker?: Partial<BreakerOptions>;
  readonly outcomeBucketMs?: number;
  readonly outcomeBuckets?: number;
  /**
   * Hotkeys that get no user traffic for a model (a validator's FAILED
   * verdict: services/verdicts.ts). Read on every `choose`; probes do not
   * go through the book, so they still reach these hotkeys.
   */
  readonly barred?: (model: string) => ReadonlySet<string>;
}

/** What the router knows about one (hotkey, model) right now: a read-only copy. */
export interface RoutingStats {
  readonly hotkey: string;
  readonly model: string;
  /** Learned concurrency (fractional) and what it allows, before the advertised ceiling. */
  readonly limit: number;
  readonly usableConcurrency: number;
  /** User requests in flight on this router. */
  readonly inFlight: number;
  readonly breaker: BreakerState;
  /** Until when an open breaker keeps it out, on the book's clock; 0 when closed. */
  readonly openUntilMs: number;
  readonly consecutiveFailures: number;
  /** Time to first token, ms: smoothed (what routing uses), median of recent samples, baseline. */
  readonly ttftEwmaMs: number | undefined;
  readonly ttftP50Ms: number | undefined;
  readonly ttftBaselineMs: number | undefined;
  /** Outcomes over the counters' horizon. */
  readonly outcomes: OutcomeCounts;
}

interface Entry {
  readonly limit: AimdLimit;
  readonly breaker: CircuitBreaker;
  readonly outcomes: OutcomeWindow;
  readonly ttft: TtftStats;
  inFlight: number;
  lastUsedMs: number;
}

/**
 * One attempt's claim on a hotkey, from dispatch to its end. Callers get it
 * from `started` and hand it back; its other fields are the book's.
 */
export class RoutingTicket {
  /** @internal */ firstTokenAtMs: number | undefined = undefined;
  /** @internal */ healthy = true;
  /** @internal */ done = false;

  /** @internal */
  constructor(
    readonly hotkey: string,
    readonly model: string,
    readonly startedAtMs: number,
    /** @internal Requests of the hotkey in flight at dispatch, this one included. */
    readonly concurrency: number,
    /** @internal The limit's window at dispatch. */
    readonly epoch: number,
    /** @internal Whether it is the half-open breaker's trial. */
    readonly trial: boolean,
  ) {}
}

/**
 * The router's routing state, per (hotkey, model): learned concurrency
 * (concurrency.ts), circuit breaker (breaker.ts), time to first token and
 * rolling outcome counters (outcome-window.ts). The chat handler asks it
 * whom to send a request to (`choose`, a snapshot handed to the pure
 * `pick`) and reports each attempt: `started` after dispatch, `firstToken`
 * on the first chunk that carries a token, `ended` once, however it ended.
 * Everything is in memory and per router.
 */
export class RoutingBook {
  readonly #now: () => number;
  readonly #random: RandomSource;
  readonly #picker: PickerOptions;
  readonly #limits: AimdOptions;
  readonly #breaker: BreakerOptions;
  readonly #bucketMs: number;
  readonly #buckets: number;
  readonly #barred: ((model: string) => ReadonlySet<string>) | undefined;
  /** model → hotkey → state. */
  readonly #entries = new Map<string, Map<string, Entry>>();
  #lastSweepMs: number;

  constructor(opts: RoutingBookOptions) {
    this.#now = opts.now;
    this.#random = opts.random;
    this.#picker = { ...PICKER_DEFAULTS, ...opts.picker };
    this.#limits = { ...AIMD_DEFAULTS, ...opts.limits };
    this.#breaker = { ...BREAKER_DEFAULTS, ...opts.breaker };
    this.#bucketMs = opts.outcomeBucketMs ?? DEFAULT_OUTCOME_BUCKET_MS;
    this.#buckets = opts.outcomeBuckets ?? DEFAULT_OUTCOME_BUCKETS;
    this.#barred = opts.barred;
    this.#lastSweepMs = opts.now();
  }

  /**
   * The session to send a request for `model` to, or undefined when no
   * hotkey can take it now. `exclude`: hotkeys already tried for this
   * request; hotkeys barred for the model are left out too. `kind`: only
   * tunnels whose model offers that kind of request are chosen.
   */
  choose(
    sessions: readonly SessionView[],
    model: string,
    exclude: ReadonlySet<string> = new Set(),
    kind: ModelKind = "chat",
  ): SessionView | undefined {
    return pick(
      sessions,
      this.routes(model),
      model,
      this.#random,
      this.#out(model, exclude),
      this.#picker,
      kind,
    );
  }

  /**
   * Whether some hotkey `choose` may pick (same exclusions) would serve the
   * model once it had room (picker.ts, wouldServe): when `choose` found
   * nobody, whether waiting for a slot can help.
   */
  wouldServe(
    sessions: readonly SessionView[],
    model: string,
    exclude: ReadonlySet<string> = new Set(),
    kind: ModelKind = "chat",
  ): boolean {
    return wouldServe(sessions, this.routes(model), model, this.#out(model, exclude), kind);
  }

  /**
   * One trial of `choose` seen from one tunnel (picker.ts, pickTrial): whether
   * a user request for the model would go to that tunnel of that hotkey now,
   * with the same barred hotkeys left out; "never" when no load would send
   * one there.
   */
  trial(
    sessions: readonly SessionView[],
    model: string,
    target: { readonly hotkey: string; readonly sessionId: string },
    kind: ModelKind = "chat",
  ): "yes" | "no" | "never" {
    return pickTrial(
      sessions,
      this.routes(model),
      model,
      target,
      this.#random,
      this.#out(model, new Set()),
      this.#picker,
      kind,
    );
  }

  /** The hotkeys left out for a request: those it tried and those barred for the model. */
  #out(model: string, exclude: ReadonlySet<string>): ReadonlySet<string> {
    const barred = this.#barred?.(model);
    return barred === undefined || barred.size === 0 ? exclude : new Set([...exclude, ...barred]);
  }

  /** The snapshot `pick` reads: every known hotkey's route for the model, now. */
  routes(model: string): ReadonlyMap<string, HotkeyRoute> {
    const out = new Map<string, HotkeyRoute>();
    const byHotkey = this.#entries.get(model);
    if (byHotkey === undefined) return out;
    const now = this.#now();
    for (const [hotkey, e] of byHotkey) {
      out.set(hotkey, {
        limit: e.limit.usable,
        overflow: e.limit.overflow,
        ttftMs: e.ttft.ewmaMs,
        available: e.breaker.admits(now),
      });
    }
    return out;
  }

  /** A request was dispatched to `hotkey` for `model`. */
  started(hotkey: string, model: string): RoutingTicket {
    const now = this.#now();
    this.#sweep(now);
    const e = this.#entry(hotkey, model);
    e.inFlight++;
    e.lastUsedMs = now;
    return new RoutingTicket(hotkey, model, now, e.inFlight, e.limit.epoch, e.breaker.started(now));
  }

  /** The attempt's first chunk carrying a token (first-token.ts) arrived. Later calls are ignored. */
  firstToken(ticket: RoutingTicket): void {
    if (ticket.done || ticket.firstTokenAtMs !== undefined) return;
    const now = this.#now();
    ticket.firstTokenAtMs = now;
    const e = this.#entry(ticket.hotkey, ticket.model);
    const ttftMs = now - ticket.startedAtMs;
    e.ttft.observe(ttftMs);
    ticket.healthy = e.limit.firstToken(ttftMs, ticket.epoch, ticket.concurrency);
  }

  /** The attempt ended. Exactly once per ticket counts; later calls are ignored. */
  ended(ticket: RoutingTicket, outcome: RoutingOutcome): void {
    if (ticket.done) return;
    ticket.done = true;
    const now = this.#now();
    const e = this.#entry(ticket.hotkey, ticket.model);
    e.inFlight = Math.max(0, e.inFlight - 1);
    e.lastUsedMs = now;
    e.outcomes.add(outcome, now);
    const sawToken = ticket.firstTokenAtMs !== undefined;
    if (!sawToken && (outcome === "deadline" || outcome === "failed_before_output")) {
      e.ttft.observeAtLeast(now - ticket.startedAtMs);
    }
    switch (outcome) {
      case "served":
        e.breaker.succeeded(ticket.trial);
        e.limit.succeeded(ticket.concurrency, ticket.healthy);
        return;
      case "failed_before_output":
      case "failed_after_output":
        e.breaker.failed(ticket.trial, now, this.#recent(e, now));
        e.limit.failed(ticket.epoch);
        return;
      case "deadline":
        // A stream cut after its first token may just be a long answer: the
        // limit shrinks, but only a miner that never answered is a breaker failure.
        if (sawToken) e.breaker.neutral(ticket.trial);
        else e.breaker.failed(ticket.trial, now, this.#recent(e, now));
        e.limit.failed(ticket.epoch);
        return;
      case "cancelled":
      case "refused":
        e.breaker.neutral(ticket.trial);
        return;
    }
  }

  /** A read-only copy of every (hotkey, model) the book knows, for metrics and the directory. */
  view(): RoutingStats[] {
    const now = this.#now();
    const out: RoutingStats[] = [];
    for (const [model, byHotkey] of this.#entries) {
      for (const [hotkey, e] of byHotkey) {
        out.push({
          hotkey,
          model,
          limit: e.limit.value,
          usableConcurrency: e.limit.usable,
          inFlight: e.inFlight,
          breaker: e.breaker.state(now),
          openUntilMs: e.breaker.openUntilMs,
          consecutiveFailures: e.breaker.consecutiveFailures,
          ttftEwmaMs: e.ttft.ewmaMs,
          ttftP50Ms: e.ttft.p50Ms,
          ttftBaselineMs: e.limit.baselineMs,
          outcomes: e.outcomes.counts(now),
        });
      }
    }
    return out;
  }

  /** Failures and breaker-relevant requests of the recent window (deadline cuts aside). */
  #recent(e: Entry, now: number): { failures: number; total: number } {
    const c = e.outcomes.counts(now, DEFAULT_BREAKER_WINDOW_MS);
    const failures = c.failedBeforeOutput + c.failedAfterOutput;
    return { failures, total: failures + c.served };
  }

  #entry(hotkey: string, model: string): Entry {
    let byHotkey = this.#entries.get(model);
    if (byHotkey === undefined) {
      byHotkey = new Map();
      this.#entries.set(model, byHotkey);
    }
    let e = byHotkey.get(hotkey);
    if (e === undefined) {
      e = {
        limit: new AimdLimit(this.#limits),
        breaker: new CircuitBreaker(this.#breaker),
        outcomes: new OutcomeWindow(this.#bucketMs, this.#buckets),
        ttft: new TtftStats(),
        inFlight: 0,
        lastUsedMs: this.#now(),
      };
      byHotkey.set(hotkey, e);
    }
    return e;
  }

  /**
   * Forgets idle (hotkey, model) pairs now and then, so hotkeys that came
   * and went do not accumulate. An open breaker is kept until it is over.
   */
  #sweep(now: number): void {
    if (now - this.#lastSweepMs < DEFAULT_FORGET_IDLE_MS) return;
    this.#lastSweepMs = now;
    for (const [model, byHotkey] of this.#entries) {
      for (const [hotkey, e] of byHotkey) {
        const idle = e.inFlight === 0 && now - e.lastUsedMs >= DEFAULT_FORGET_IDLE_MS;
        if (idle && e.breaker.state(now) !== "open") byHotkey.delete(hotkey);
      }
      if (byHotkey.size === 0) this.#entries.delete(model);
    }
  }
}
