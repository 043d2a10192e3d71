import { randomBytes as nodeRandomBytes } from "node:crypto";
import { type Clock, systemClock } from "../../common/clock.js";
import { TensorClawError } from "../../common/errors.js";
import type { ChannelClosed, FrameChannel } from "../../common/frame-channel.js";
import { type Logger, silentLogger } from "../../common/logger.js";
import { ReplayCache } from "../../common/replay-cache.js";
import { ConnectResponse, RejectReason } from "../../gen/tensorclaw/v1/tunnel.js";
import { TUNNEL_PROTOCOL_VERSION } from "./hello.js";
import { HelloBudget, peerAddress } from "./hello-budget.js";
import {
  type AdmitHotkey,
  resolveLimits,
  resolveTimings,
  type TunnelHubOptions,
  type TunnelLimits,
  type TunnelTimings,
} from "./options.js";
import { type ModelFilter, ROUTE_EVERY_MODEL, TunnelSession } from "./session.js";
import type { DispatchBody, DispatchOptions, InferenceCall, SessionView, TunnelDispatcher } from "./types.js";

/**
 * The router's tunnel hub: one registry of sessions fed by every transport
 * (gRPC and WebSocket adapters call `accept` with a FrameChannel), and the
 * TunnelDispatcher the Business API and the Probe service use. Nothing
 * above it knows which transport a miner uses.
 */
export class TunnelHub implements TunnelDispatcher {
  readonly routerId: string;
  readonly timings: TunnelTimings;
  readonly limits: TunnelLimits;
  readonly #clock: Clock;
  readonly #helloBudget: HelloBudget;
  readonly #random: (n: number) => Uint8Array;
  readonly #logger: Logger;
  readonly #admit: AdmitHotkey;
  readonly #replay: ReplayCache;
  /** Every open session, live or still in its handshake. */
  readonly #all = new Set<TunnelSession>();
  /** Live (accepted) sessions by id. */
  readonly #live = new Map<string, TunnelSession>();
  /** `sessions()` as last built; undefined once anything changed. */
  #views: readonly SessionView[] | undefined;
  /** Live sessions by routed model id, and the routes each was filed under (see `#file`). */
  readonly #offering = new Map<string, Set<TunnelSession>>();
  readonly #filedRoutes = new Map<TunnelSession, ReadonlyMap<string, unknown>>();
  readonly #ghosts = new Set<string>();
  readonly #closeWaiters = new Set<() => void>();
  readonly #changeListeners = new Set<() => void>();
  #draining = false;
  #nextSession = 0;
  #models: ModelFilter = ROUTE_EVERY_MODEL;
  readonly #sessionPrefix: string;

  constructor(opts: TunnelHubOptions) {
    if (opts.routerId === "") throw new RangeError("routerId must not be empty");
    this.routerId = opts.routerId;
    this.timings = resolveTimings(opts.timings);
    this.limits = resolveLimits(opts.limits);
    this.#helloBudget = new HelloBudget(this.limits.helloChecksPerSecond);
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.randomBytes ?? ((n) => nodeRandomBytes(n));
    this.#logger = opts.logger ?? silentLogger();
    this.#admit = opts.admit ?? (() => true);
    // Twice the window: a hello stays refused as a replay for as long as it could be fresh.
    this.#replay = new ReplayCache(2 * this.timings.freshnessMs);
    this.#sessionPrefix = Buffer.from(this.#random(4)).toString("hex");
  }

  /**
   * Takes a new tunnel stream from a transport adapter: sends the challenge
   * and runs the session. While the hub drains, the stream is refused with
   * Reject UNAVAILABLE.
   */
  accept(channel: FrameChannel): void {
    if (this.#draining) {
      refuse(channel, this, this.#random(32), this.#clock.now(), {
        message: "router is shutting down",
        retryAfterMs: this.timings.drainReconnectAfterMs,
      });
      return;
    }
    const address = peerAddress(channel.peer);
    const pending = this.#pendingFrom(address);
    if (pending >= this.limits.maxPendingHandshakesPerAddress) {
      this.#logger.warn(
        { peer: address, pending, limit: this.limits.maxPendingHandshakesPerAddress },
        "refusing a tunnel: too many handshakes in progress from one address",
      );
      refuse(channel, this, this.#random(32), this.#clock.now(), {
        message: `too many tunnel handshakes in progress from ${address} (at most ${this.limits.maxPendingHandshakesPerAddress})`,
        retryAfterMs: PENDING_RETRY_AFTER_MS,
      });
      return;
    }
    const session = new TunnelSession({
      channel,
      sessionId: `${this.#sessionPrefix}-${(++this.#nextSession).toString(36)}`,
      routerId: this.routerId,
      nonce: this.#random(32),
      channelBinding: channel.channelBinding?.(),
      clock: this.#clock,
      timings: this.timings,
      replay: this.#replay,
      admit: this.#admit,
      helloBudget: (nowMs) => this.#helloBudget.take(nowMs),
      tunnelRoom: (hotkey) => this.#tunnelRoom(hotkey),
      isGhost: (hotkey) => this.#ghosts.has(hotkey),
      models: () => this.#models,
      logger: this.#logger,
      events: {
        live: (s) => {
          this.#live.set(s.sessionId, s);
          this.#file(s);
          this.#changed();
        },
        changed: (s) => {
          this.#file(s);
          this.#changed();
        },
        closed: (s, info) => this.#onClosed(s, info),
      },
    });
    this.#all.add(session);
    session.start();
  }

  /**
   * Every live session, as immutable snapshots. The list is kept until
   * something changes (every change passes through `#changed`): routing
   * reads it several times per request.
   */
  sessions(): readonly SessionView[] {
    if (this.#views !== undefined) return this.#views;
    const out: SessionView[] = [];
    for (const s of this.#live.values()) out.push(s.view());
    this.#views = Object.freeze(out);
    return this.#views;
  }

  /**
   * Calls `listener` after anything that may change what `sessions()`
   * returns: a session going live or closing, a slot taken or freed, a new
   * model list, a latency sample, ghost or drain. Returns an unsubscribe
   * function. Lets a watcher wait for a state instead of polling for it.
   */
  onChange(listener: () => void): () => void {
    this.#changeListeners.add(listener);
    return () => this.#changeListeners.delete(listener);
  }

  /**
   * The live sessions that route `model`, as snapshots (the same ones
   * `sessions()` gives): a request looks only at its model's miners, not
   * at every miner of the subnet.
   */
  sessionsOffering(model: string): readonly SessionView[] {
    const set = this.#offering.get(model);
    if (set === undefined) return [];
    const out: SessionView[] = [];
    for (const s of set) out.push(s.view());
    return out;
  }

  /** Sends a chat request to one session (see TunnelDispatcher). */
  dispatch(sessionId: string, model: string, body: DispatchBody, opts: DispatchOptions): InferenceCall {
    const session = this.#live.get(sessionId);
    if (session === undefined) throw new TensorClawError("no_capacity", `session ${sessionId} is gone`);
    return session.dispatch(model, body, opts);
  }

  /**
   * Sets which offered models are routed and under which id (the router's
   * model catalogue); live sessions apply it at once and tell their miners
   * what they now ignore.
   */
  setModelFilter(filter: ModelFilter): void {
    this.#models = filter;
    for (const s of this.#live.values()) {
      s.applyModelFilter();
      this.#file(s);
    }
    // The routes changed: listeners hear it (a queued request may now have a miner).
    this.#changed();
  }

  /** Marks every session of a hotkey ghost (true) or active (false); remembered for new sessions. */
  setGhost(hotkey: string, ghost: boolean): void {
    if (ghost) this.#ghosts.add(hotkey);
    else this.#ghosts.delete(hotkey);
    for (const s of this.#live.values()) if (s.hotkey === hotkey) s.setGhost(ghost);
  }

  /**
   * Asks the admission hook again for every live session and drains those
   * it now refuses (a hotkey deregistered from the subnet): in-flight
   * requests finish, the miner is told to go, and its next hello is
   * refused. Resolves with the number of sessions drained.
   */
  async revokeUnadmitted(reason: string): Promise<number> {
    const live = [...this.#live.values()];
    const verdicts = await Promise.all(
      live.map(async (s) => {
        try {
          return await this.#admit(s.hotkey);
        } catch {
          return true; // an admission error is no proof the miner left the subnet
        }
      }),
    );
    let drained = 0;
    live.forEach((s, i) => {
      if (verdicts[i] !== false) return;
      this.#logger.info(
        { hotkey: s.hotkey, sessionId: s.sessionId, reason },
        "draining a session no longer admitted",
      );
      s.drain(reason);
      drained++;
    });
    return drained;
  }

  /** Blends a latency sample (e.g. a measured time to first token, ms) into a session's estimate. */
  observeLatency(sessionId: string, ms: number): void {
    this.#live.get(sessionId)?.observeLatency(ms);
  }

  /** Open streams, including those still in their handshake. */
  get openCount(): number {
    return this.#all.size;
  }

  /**
   * Router shutdown: refuses new tunnels, sends Drain to every session, lets
   * in-flight requests finish within the drain grace, and resolves once
   * every tunnel is closed.
   */
  async drain(reason = "router shutting down"): Promise<void> {
    this.#draining = true;
    for (const s of [...this.#all]) s.drain(reason);
    await this.#allClosed();
  }

  /** Closes every tunnel now (in-flight requests fail). */
  close(reason = "router closing"): void {
    this.#draining = true;
    for (const s of [...this.#all]) s.close("going_away", reason);
  }

  /** Sessions from `address` still in their handshake (before Accept or Reject). */
  #pendingFrom(address: string): number {
    let n = 0;
    for (const s of this.#all) {
      if ((s.phase === "handshake" || s.phase === "admitting") && peerAddress(s.peer) === address) n++;
    }
    return n;
  }

  /** Why `hotkey` may not open one more live tunnel (it holds the most already), or undefined. */
  #tunnelRoom(hotkey: string): string | undefined {
    let n = 0;
    for (const s of this.#live.values()) if (s.hotkey === hotkey) n++;
    if (n < this.limits.maxTunnelsPerHotkey) return undefined;
    this.#logger.warn(
      { hotkey, tunnels: n, limit: this.limits.maxTunnelsPerHotkey },
      "refusing a tunnel: the hotkey holds the most tunnels allowed",
    );
    return `hotkey ${hotkey} already holds ${n} tunnels on this router (at most ${this.limits.maxTunnelsPerHotkey}); close one first`;
  }

  #allClosed(): Promise<void> {
    if (this.#all.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#closeWaiters.add(resolve));
  }

  /** Files a live session under the models it routes, when its routes are new (a cheap check otherwise). */
  #file(s: TunnelSession): void {
    const routes = s.routes;
    if (this.#filedRoutes.get(s) === routes || this.#live.get(s.sessionId) !== s) return;
    this.#unfile(s);
    this.#filedRoutes.set(s, routes);
    for (const id of routes.keys()) {
      let set = this.#offering.get(id);
      if (set === undefined) {
        set = new Set();
        this.#offering.set(id, set);
      }
      set.add(s);
    }
  }

  #unfile(s: TunnelSession): void {
    const routes = this.#filedRoutes.get(s);
    if (routes === undefined) return;
    this.#filedRoutes.delete(s);
    for (const id of routes.keys()) {
      const set = this.#offering.get(id);
      set?.delete(s);
      if (set?.size === 0) this.#offering.delete(id);
    }
  }

  #changed(): void {
    this.#views = undefined;
    if (this.#changeListeners.size === 0) return;
    for (const l of [...this.#changeListeners]) {
      try {
        l();
      } catch (err) {
        // A watcher's bug must not break the session that reported the change.
        this.#logger.error({ err }, "tunnel hub change listener failed");
      }
    }
  }

  #onClosed(session: TunnelSession, _info: ChannelClosed): void {
    this.#all.delete(session);
    if (this.#live.get(session.sessionId) === session) {
      this.#live.delete(session.sessionId);
      this.#unfile(session);
      this.#changed();
    }
    if (this.#all.size === 0) {
      for (const w of this.#closeWaiters) w();
      this.#closeWaiters.clear();
    }
  }
}

/** `retry_after_ms` of a tunnel refused for too many handshakes from its address. */
const PENDING_RETRY_AFTER_MS = 2_000;

/**
 * Refuses a new stream before its handshake (shutdown, too many handshakes
 * from its address). The protocol wants a Challenge first, so the stream
 * gets one, then Reject UNAVAILABLE, then the close.
 */
function refuse(
  channel: FrameChannel,
  hub: { routerId: string; timings: TunnelTimings },
  nonce: Uint8Array,
  nowMs: number,
  why: { message: string; retryAfterMs: number },
): void {
  channel.start({ message: () => {}, drain: () => {}, closed: () => {} });
  const message = ConnectResponse.encode({
    frames: [
      {
        kind: {
          $case: "challenge",
          value: {
            nonce: Buffer.from(nonce),
            routerId: hub.routerId,
            protocolVersion: TUNNEL_PROTOCOL_VERSION,
            helloTimeoutMs: hub.timings.helloTimeoutMs,
            serverTimeMs: BigInt(nowMs),
          },
        },
      },
      {
        kind: {
          $case: "reject",
          value: {
            reason: RejectReason.REJECT_REASON_UNAVAILABLE,
            message: why.message,
            retryAfterMs: why.retryAfterMs,
          },
        },
      },
    ],
  }).finish();
  channel.send(message);
  channel.close("going_away", why.message);
}
