import { TensorClawError, toTensorClawError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { ModelKind } from "../../common/request-kinds.js";
import type { ApiMetrics } from "../metrics.js";
import type { RoutingBook, RoutingTicket } from "../routing/book.js";
import type { RoutingOutcome } from "../routing/outcome-window.js";
import type { DispatchBody, InferenceCall, SessionView, TunnelDispatcher } from "../tunnel/types.js";
import type { ReportedUsage } from "../usage/clamp.js";
import type { UsageSink } from "../usage/event.js";
import { attemptOutcome, isRefusal } from "./attempt-outcome.js";
import type { CapacityQueue, SlotRequest, WaitEnd } from "./capacity-queue.js";
import { ledgerOutcome, recordFailedAttempt } from "./chat-usage.js";
import type { Attempt } from "./upstream.js";
import { WaitingGauge } from "./waiting-gauge.js";

/** What the attempt loop needs from the router (a subset of ChatDeps). */
export interface AttemptLoopDeps {
  readonly dispatcher: TunnelDispatcher;
  readonly routing: RoutingBook;
  readonly usage: UsageSink;
  readonly metrics: ApiMetrics;
  readonly clock: () => number;
  readonly logger: Logger;
  /** Where a request waits while every miner of its model is busy; absent: no miner free is a 503 at once. */
  readonly queue?: CapacityQueue;
  readonly options: {
    readonly requestTimeoutMs: number;
    readonly maxAttempts: number;
    readonly noCapacityRetryAfterMs: number;
  };
}

/**
 * One request's state across its attempts, as the loop keeps it: every
 * endpoint's request state extends it. `call`, `session`, `lastAttempt`
 * and `reported` describe the attempt whose usage counts (the last one).
 */
export interface AttemptState {
  readonly requestId: string;
  readonly startedAtMs: number;
  /** Who asks (the API key's id, or "anonymous"): the capacity queue is fair across accounts. */
  readonly account: string;
  /** The client went away. (A flag, not an AbortController: cheaper on the hot path.) */
  clientGone: boolean;
  /** Set while the request waits in the capacity queue: takes it out (its client went away). */
  leaveQueue: (() => void) | undefined;
  /** Set once a miner was dispatched: the call whose usage counts. */
  call: InferenceCall | undefined;
  session: SessionView | undefined;
  /** The current attempt's claim in the routing book. */
  ticket: RoutingTicket | undefined;
  /** How the last attempt ended (the routing book's view). */
  lastAttempt: RoutingOutcome | undefined;
  reported: ReportedUsage | undefined;
  /** When the current attempt was dispatched (the miner's own time to first token starts here). */
  dispatchedAtMs: number;
  /** When the first token (or vector) of the current attempt reached the router; undefined until then. */
  firstTokenAtMs: number | undefined;
}

/** A request's attempt state before any miner was tried. */
export function freshAttempts(requestId: string, startedAtMs: number, account: string): AttemptState {
  return {
    requestId,
    startedAtMs,
    account,
    clientGone: false,
    leaveQueue: undefined,
    call: undefined,
    session: undefined,
    ticket: undefined,
    lastAttempt: undefined,
    reported: undefined,
    dispatchedAtMs: startedAtMs,
    firstTokenAtMs: undefined,
  };
}

/** What the usage hand-off reads of a request's attempts (chat-usage.ts, FinishedRequest). */
export function attemptFacts(st: AttemptState) {
  return {
    requestId: st.requestId,
    startedAtMs: st.startedAtMs,
    call: st.call,
    minerHotkey: st.session?.hotkey,
    reported: st.reported,
    lastAttempt: st.lastAttempt,
    ttftMs: st.firstTokenAtMs === undefined ? null : st.firstTokenAtMs - st.startedAtMs,
  };
}

/** What is genuinely one endpoint's in trying a miner: what it sends and how it reads the answer. */
export interface AttemptKind {
  /** The request kind a miner's model must offer to be chosen. */
  readonly kind: ModelKind;
  /** The work as the no-capacity message names it ("", "completions of ", "embeddings of "). */
  readonly work: string;
  /** The request sent to the miner. */
  body(): DispatchBody;
  /** Relays one miner's answer; says whether another miner may be tried (upstream.ts). */
  relay(call: InferenceCall): Promise<Attempt>;
  /** Whether any output reached the user: from then on no other miner may start over. */
  outputSent(): boolean;
}

/** A miner chosen for an attempt: dispatched (`call`), or its dispatch failed (`error`). */
type Claim =
  | { readonly session: SessionView; readonly call: InferenceCall }
  | { readonly session: SessionView; readonly error: TensorClawError };

/**
 * Tries miners of a model until one answers, for one request: failover
 * before any output (at most `maxAttempts`, within the request's
 * deadline), a second opinion on refusals, the failover counter, the
 * waiting gauge and the routing book's bookkeeping. While every miner
 * that would serve it is busy, the request waits in the capacity queue
 * (capacity-queue.ts) instead of failing at once. Chat, completions and
 * embeddings all go through it, so a fix here applies to all three.
 */
export class AttemptLoop {
  /** Waiting for a miner from the start until a dispatch succeeds, and again after each failed attempt. */
  readonly #waiting: WaitingGauge;

  constructor(
    private readonly deps: AttemptLoopDeps,
    private readonly st: AttemptState,
    private readonly kind: AttemptKind,
  ) {
    this.#waiting = new WaitingGauge(deps.metrics.waiting);
  }

  /** The request waits for a miner again (chat moving on to a fallback model). */
  waiting(): void {
    this.#waiting.start();
  }

  /** The request is over: its share of the waiting gauge is given back, whatever happened. */
  close(): void {
    this.#waiting.stop();
  }

  /** Tries miners of `model` until one answers (see the class). */
  async tryModel(model: string): Promise<Attempt> {
    const d = this.deps;
    const st = this.st;
    const deadline = st.startedAtMs + d.options.requestTimeoutMs;
    const tried = new Set<string>();
    let last: TensorClawError | undefined;
    /** A miner failed before output: the next dispatch, if any, is a failover. */
    let failingOver = false;
    /**
     * A miner's refusal (its backend's 4xx) awaiting a second opinion: one other miner is
     * asked. Should that one serve the request, the refusal was no refusal, and counts against
     * the miner that made it; otherwise the user gets the refusal. Without this, answering 4xx
     * would be a free way to decline users' work while staying in the routing pool.
     */
    let refusal: { readonly hotkey: string; readonly error: TensorClawError } | undefined;
    /** Why the capacity queue gave up on the request (full, or no slot in time). */
    let unqueued: TensorClawError | undefined;
    for (let attempt = 0; attempt < d.options.maxAttempts; attempt++) {
      if (st.clientGone) return { kind: "failed", error: new TensorClawError("cancelled") };
      if (deadline - d.clock() <= 0)
        return { kind: "failed", error: new TensorClawError("upstream_timeout") };
      // Requests already waiting for this model go first: a newcomer queues behind them.
      let claim =
        d.queue?.ahead(model, this.kind.kind) === true ? undefined : this.claim(model, tried, deadline);
      if (claim === undefined) {
        const waited = await this.queued(model, tried, deadline);
        if (waited instanceof TensorClawError) {
          if (waited.code === "cancelled") return { kind: "failed", error: waited };
          unqueued = waited;
          break;
        }
        if (waited === undefined) break;
        claim = waited;
      }
      if ("error" in claim) {
        // The session filled up or left between snapshot and dispatch: try another.
        if (claim.error.code !== "no_capacity") last = claim.error;
        continue;
      }
      const { session, call } = claim;
      this.#waiting.stop();
      // Counted once another miner really took the request (not when none was left to try).
      if (failingOver) d.metrics.failovers.inc({ model });
      failingOver = false;
      st.call = call;
      st.session = session;
      st.dispatchedAtMs = d.clock();
      st.reported = undefined;
      const ticket = d.routing.started(session.hotkey, model);
      st.ticket = ticket;
      let result: Attempt | undefined;
      try {
        result = await this.kind.relay(call);
      } finally {
        st.lastAttempt = attemptOutcome(result, st.clientGone);
        d.routing.ended(ticket, st.lastAttempt);
        d.metrics.minerAttempts.inc({ hotkey: session.hotkey, outcome: st.lastAttempt });
      }
      if (result.kind === "done" && refusal !== undefined) this.refusalOverruled(refusal.hotkey, model);
      if (
        result.kind === "failed" &&
        refusal === undefined &&
        !this.kind.outputSent() &&
        !st.clientGone &&
        isRefusal(result.error.code)
      ) {
        refusal = { hotkey: session.hotkey, error: result.error };
        this.#waiting.start();
        this.leave(model);
        failingOver = true;
        continue;
      }
      if (result.kind !== "retry") return result;
      this.#waiting.start();
      // This miner failed before any output and another is tried: it earns nothing, and the
      // failure counts against its success rate.
      this.leave(model);
      last = result.error;
      failingOver = true;
    }
    return {
      kind: "failed",
      error:
        // A refusal nobody overruled is the answer, whatever failed after it.
        refusal?.error ??
        last ??
        unqueued ??
        new TensorClawError(
          "no_capacity",
          `No miner can serve ${this.kind.work}${JSON.stringify(model)} right now.`,
          { retryAfterMs: d.options.noCapacityRetryAfterMs },
        ),
    };
  }

  /**
   * Chooses a miner for the next attempt (leaving out `tried`, to which it
   * is added) and dispatches to it; undefined when no miner has room now.
   */
  private claim(model: string, tried: Set<string>, deadline: number): Claim | undefined {
    const d = this.deps;
    const session = d.routing.choose(d.dispatcher.sessionsOffering(model), model, tried, this.kind.kind);
    if (session === undefined) return undefined;
    tried.add(session.hotkey);
    try {
      const opts = { deadlineMs: deadline - d.clock(), traceId: this.st.requestId };
      return { session, call: d.dispatcher.dispatch(session.sessionId, model, this.kind.body(), opts) };
    } catch (err) {
      return { session, error: toTensorClawError(err) };
    }
  }

  /**
   * Waits in the capacity queue while every miner that would serve the
   * request is busy. Resolves to the miner it got, to undefined when no
   * miner would serve it at all (or the queue is off: nothing to wait
   * for), or to the error that ends the wait: `no_capacity` (queue full,
   * or no slot in time) or `cancelled` (the client left).
   */
  private async queued(
    model: string,
    tried: Set<string>,
    deadline: number,
  ): Promise<Claim | TensorClawError | undefined> {
    const d = this.deps;
    const q = d.queue;
    const kind = this.kind.kind;
    if (
      q === undefined ||
      !q.enabled ||
      !d.routing.wouldServe(d.dispatcher.sessionsOffering(model), model, tried, kind)
    ) {
      return undefined;
    }
    let claim: Claim | undefined;
    const req: SlotRequest = {
      account: this.st.account,
      picky: tried.size > 0,
      take: () => {
        claim = this.claim(model, tried, deadline);
        return claim !== undefined;
      },
    };
    this.st.leaveQueue = () => q.leave(req);
    let end: WaitEnd;
    try {
      end = await q.wait(model, kind, req, deadline);
    } finally {
      this.st.leaveQueue = undefined;
    }
    if (end === "served" && claim !== undefined) return claim;
    if (end === "cancelled") return new TensorClawError("cancelled");
    const retryAfterMs = d.options.noCapacityRetryAfterMs;
    const what = `Every miner that can serve ${this.kind.work}${JSON.stringify(model)}`;
    const why =
      end === "full"
        ? `${what} is busy and the router's wait queue is full; retry later.`
        : `${what} stayed busy for as long as the request could wait for a free one; retry later.`;
    return new TensorClawError("no_capacity", why, { retryAfterMs });
  }

  /**
   * Records the attempt just left for another (a miner that failed before
   * any output, of `model`): it earns nothing and, unless neutral (a
   * refusal), counts against its success rate. The request's own end
   * records only its last.
   */
  leave(model: string): void {
    const st = this.st;
    const failed = st.lastAttempt === undefined ? undefined : ledgerOutcome(st.lastAttempt);
    if (failed !== undefined && st.session !== undefined) {
      const r = { requestId: st.requestId, model, startedAtMs: st.startedAtMs };
      recordFailedAttempt(this.deps, r, st.session.hotkey, failed);
    }
    st.lastAttempt = undefined;
    st.call = undefined;
    st.session = undefined;
    // Nothing of it reached the user (embeddings may have had vectors): its first token is not the answer's.
    st.firstTokenAtMs = undefined;
  }

  /**
   * The current attempt's first token (or vector) reached the router: time
   * to first token for the metrics and the routing book, once per attempt.
   */
  firstToken(model: string): void {
    const st = this.st;
    if (st.firstTokenAtMs !== undefined) return;
    const d = this.deps;
    const now = d.clock();
    st.firstTokenAtMs = now;
    d.metrics.ttft.observe({ model }, (now - st.startedAtMs) / 1000);
    if (st.session !== undefined) {
      d.metrics.minerTtft.observe({ hotkey: st.session.hotkey }, (now - st.dispatchedAtMs) / 1000);
    }
    if (st.ticket !== undefined) d.routing.firstToken(st.ticket);
  }

  /**
   * Another miner served a request that `hotkey` refused as invalid: the
   * refusal counts as a failure before output, in the routing book (a
   * zero-length attempt) and in the ledger, like any other failure.
   */
  private refusalOverruled(hotkey: string, model: string): void {
    const d = this.deps;
    d.routing.ended(d.routing.started(hotkey, model), "failed_before_output");
    d.metrics.minerAttempts.inc({ hotkey, outcome: "refusal_overruled" });
    const r = { requestId: this.st.requestId, model, startedAtMs: this.st.startedAtMs };
    recordFailedAttempt(d, r, hotkey, "failed_early");
    d.logger.info(
      { requestId: this.st.requestId, hotkey, model },
      "a miner's refusal was overruled by another miner",
    );
  }
}
