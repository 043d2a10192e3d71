/**
 * Keeps one tunnel to one router up, forever: dial the preferred endpoint
 * (gRPC first under `auto`), fall back to the next one when a tunnel cannot
 * even be established, serve while live, and after every end wait as the
 * backoff policy, a Reject's retry hint or a Drain's reconnect hint says.
 * The endpoint that last worked is tried first next time, so a miner behind
 * a firewall that blocks HTTP/2 does not pay for a failed gRPC dial on every
 * reconnect.
 *
 * Logs one line per state change: connecting, connected (with transport),
 * drained, backoff (with seconds).
 *
 * Before a Hello is signed, the router id in the Challenge is vetted
 * against the plan's `?id=` or the id pinned for that address
 * (router-guard.ts); the first id seen at an unpinned address is pinned
 * for every address of the router. A wrong id ends the tunnel unsigned,
 * with an error saying how to accept a real change, and the client backs
 * off as after any failure.
 */
import type { FrameChannel } from "../../common/frame-channel.js";
import type { Logger } from "../../common/logger.js";
import type { ModelOffer } from "../../gen/tensorclaw/v1/tunnel.js";
import { rejectReasonToJSON } from "../../gen/tensorclaw/v1/tunnel.js";
import { afterDisconnect, type BackoffPolicy, backoffDelayMs, INITIAL_BACKOFF } from "./backoff.js";
import { type Endpoint, endpointAddress, type RouterPlan } from "./endpoints.js";
import { judgeRouterId } from "./router-guard.js";
import type { RouterPins } from "./router-pins.js";
import { type SessionEnd, TunnelSession, type TunnelSessionDeps } from "./session.js";

/** Most random delay added to a router's reconnect hint after Drain (at most the backoff base). */
const MAX_DRAIN_JITTER_MS = 1000;

/** Where a tunnel client is. */
export type TunnelClientState = "connecting" | "connected" | "backoff" | "stopped";

/** A snapshot of a tunnel client, for tests and status output. */
export interface TunnelClientStatus {
  readonly state: TunnelClientState;
  /** The transport in use or being tried. */
  readonly transport: Endpoint["transport"] | undefined;
  /** The router's session id while connected. */
  readonly sessionId: string | undefined;
  /** Tunnels established so far. */
  readonly connects: number;
}

/** Everything a tunnel client needs. */
export interface TunnelClientOptions {
  readonly plan: RouterPlan;
  /** Opens a channel to an endpoint (real transports, or in-memory ones in tests). */
  readonly dial: (endpoint: Endpoint) => FrameChannel;
  /** Session settings shared by every tunnel of this client. */
  readonly session: Omit<TunnelSessionDeps, "channel" | "onLive" | "logger" | "vetRouterId">;
  /** Router ids pinned per address (shared by every client of the miner). */
  readonly pins: RouterPins;
  readonly backoff: BackoffPolicy;
  /** Uniform in [0, 1). */
  readonly random: () => number;
  readonly logger: Logger;
}

/** One router's reconnecting tunnel. */
export class TunnelClient {
  readonly #o: TunnelClientOptions;
  readonly #log: Logger;
  readonly #listeners = new Set<(s: TunnelClientStatus) => void>();
  #status: TunnelClientStatus = { state: "backoff", transport: undefined, sessionId: undefined, connects: 0 };
  #session: TunnelSession | undefined;
  #stopped = false;
  /** Ends the backoff sleep early (stop()). */
  readonly #wake = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(opts: TunnelClientOptions) {
    this.#o = opts;
    this.#log = opts.logger.child({ router: opts.plan.name });
  }

  /** The current state. */
  get status(): TunnelClientStatus {
    return this.#status;
  }

  /** Calls `fn` on every state change. Returns an unsubscribe function. */
  onStatus(fn: (s: TunnelClientStatus) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Resolves once `predicate` holds for the status (checked now and on every change). */
  waitFor(predicate: (s: TunnelClientStatus) => boolean): Promise<TunnelClientStatus> {
    if (predicate(this.#status)) return Promise.resolve(this.#status);
    return new Promise((resolve) => {
      const off = this.onStatus((s) => {
        if (!predicate(s)) return;
        off();
        resolve(s);
      });
    });
  }

  /** Starts connecting (idempotent). */
  start(): void {
    this.#loop ??= this.#run();
  }

  /** Sends a new model list on the live tunnel, if any. */
  updateModels(offers: readonly ModelOffer[]): void {
    this.#session?.updateModels(offers);
  }

  /**
   * Stops reconnecting and closes the tunnel. With `graceMs` > 0 a live
   * tunnel first withdraws its models and lets in-flight requests finish
   * for up to that long.
   */
  async stop(graceMs = 0): Promise<void> {
    this.#stopped = true;
    this.#wake.abort();
    await this.#session?.shutdown(graceMs, "miner shutting down");
    await this.#loop;
  }

  #set(patch: Partial<TunnelClientStatus>): void {
    this.#status = { ...this.#status, ...patch };
    for (const fn of [...this.#listeners]) fn(this.#status);
  }

  async #run(): Promise<void> {
    const endpoints = this.#o.plan.endpoints;
    let preferred = 0;
    let backoff = INITIAL_BACKOFF;
    while (!this.#stopped) {
      let end: SessionEnd | undefined;
      const order = [...endpoints.slice(preferred), ...endpoints.slice(0, preferred)];
      for (let i = 0; i < order.length && !this.#stopped; i++) {
        const ep = order[i] as Endpoint;
        end = await this.#attempt(ep);
        if (end.kind !== "not_established") {
          preferred = endpoints.indexOf(ep);
          break;
        }
        if (i < order.length - 1) {
          this.#log.warn(
            { transport: ep.transport, reason: end.reason },
            "could not establish the tunnel; trying the fallback",
          );
        }
      }
      if (this.#stopped || end === undefined) break;
      const connectedForMs = end.kind === "closed" || end.kind === "drained" ? end.connectedForMs : undefined;
      const next = afterDisconnect(this.#o.backoff, backoff, connectedForMs);
      // The first retry after a failure (or after a stable tunnel) waits at most the base.
      let delayMs = backoffDelayMs(this.#o.backoff, next.attempt === 0 ? next : backoff, this.#o.random);
      backoff = next;
      if (end.kind === "drained") {
        // Follow the hint, with a little jitter so drained miners do not return in one wave.
        delayMs =
          end.reconnectAfterMs +
          Math.floor(this.#o.random() * Math.min(this.#o.backoff.baseMs, MAX_DRAIN_JITTER_MS));
      } else if (end.kind === "wrong_router") {
        this.#log.error({ pins: this.#o.pins.where }, end.message);
      } else if (end.kind === "rejected") {
        delayMs = Math.max(delayMs, end.retryAfterMs);
        this.#log.warn(
          { reason: rejectReasonToJSON(end.reason), message: end.message },
          "router rejected the hello",
        );
      } else {
        this.#log.warn(
          { reason: end.reason },
          end.kind === "closed" ? "tunnel closed" : "tunnel not established",
        );
      }
      this.#set({ state: "backoff", sessionId: undefined });
      this.#log.info({ seconds: Math.round(delayMs / 100) / 10 }, `backoff ${(delayMs / 1000).toFixed(1)} s`);
      await this.#o.session.clock.sleep(delayMs, this.#wake.signal);
    }
    this.#set({ state: "stopped", sessionId: undefined });
  }

  /** Why not to sign for `routerId` at `ep`, or undefined (pinning it on first contact). */
  #vet(ep: Endpoint, routerId: string): string | undefined {
    const plan = this.#o.plan;
    const pins = this.#o.pins;
    const verdict = judgeRouterId(plan, ep, routerId, pins);
    if (!verdict.ok) return verdict.message;
    if (verdict.firstContact) {
      const addresses = plan.endpoints.map(endpointAddress);
      try {
        pins.pin(addresses, routerId);
        this.#log.warn(
          { routerId, addresses, pins: pins.where },
          `first contact: pinned router id ${JSON.stringify(routerId)}; a later challenge naming another id gets no hello`,
        );
      } catch (err) {
        // Still pinned for this process; only a restart would forget it.
        this.#log.error(
          { routerId, pins: pins.where, err: err instanceof Error ? err.message : String(err) },
          "cannot save the router id pin",
        );
      }
    }
    return undefined;
  }

  async #attempt(ep: Endpoint): Promise<SessionEnd> {
    this.#set({ state: "connecting", transport: ep.transport, sessionId: undefined });
    this.#log.info({ transport: ep.transport, endpoint: ep.label }, "connecting");
    let channel: FrameChannel;
    try {
      channel = this.#o.dial(ep);
    } catch (err) {
      // A dial that cannot even start (bad address, TLS setup) is a failed attempt, not a crash.
      return { kind: "not_established", reason: err instanceof Error ? err.message : String(err) };
    }
    // check-spreads: allow (once per connection; the fields below must win over any the caller's object carries)
    const session = new TunnelSession({
      ...this.#o.session,
      channel,
      logger: this.#log,
      vetRouterId: (routerId) => this.#vet(ep, routerId),
      onLive: (sessionId) => {
        this.#log.info({ transport: ep.transport, sessionId }, `connected via ${ep.transport}`);
        this.#set({ state: "connected", sessionId, connects: this.#status.connects + 1 });
      },
    });
    this.#session = session;
    try {
      return await session.run();
    } finally {
      this.#session = undefined;
    }
  }
}
