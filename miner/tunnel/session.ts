/**
 * One tunnel from the miner's side, over any FrameChannel: answer the
 * router's Challenge with a signed Hello, wait for Accept or Reject, then
 * serve InferenceRequests concurrently (each in a RequestRunner), answer
 * Pings, apply Cancel and Credit, and follow Drain (finish in-flight work,
 * take no new work, then hang up). `run()` resolves with how the tunnel
 * ended, which the TunnelClient turns into a reconnect decision
 * (session-types.ts). Handshake deadlines and the router-silence
 * watch are its TunnelWatchdog (watchdog.ts).
 *
 * The router is a network peer like any other: a message that does not
 * decode or a frame out of order ends the tunnel with "invalid"; a router
 * that goes silent (no frame for several ping intervals) is treated as gone.
 */

import { FrameBatcher } from "../../common/frame-batcher.js";
import {
  type ChannelClosed,
  type ChannelCloseKind,
  DEFAULT_MAX_MESSAGE_BYTES,
} from "../../common/frame-channel.js";
import {
  type Challenge,
  ConnectRequest,
  ConnectResponse,
  type InferenceRequest,
  MinerFrame,
  type ModelOffer,
  RequestErrorCode,
  type RouterFrame,
} from "../../gen/tensorclaw/v1/tunnel.js";
import { sameOffers } from "../model-catalog.js";
import { RequestRunner, type RequestSink } from "../request-runner.js";
import { buildHello, CLOCK_SKEW_WARN_MS, challengeFault, clockSkewMs } from "./hello.js";
import type { SessionEnd, TunnelSessionDeps } from "./session-types.js";
import { TunnelWatchdog } from "./watchdog.js";

/** Requests a router may send beyond a model's max_concurrency: its liveness probe slot. */
const PROBE_SLOTS = 1;

/** Ignored model ids named in one log line (the list comes from the router). */
const MAX_IGNORED_LOGGED = 20;

export type { SessionEnd, TunnelSessionDeps } from "./session-types.js";

type Phase = "challenge" | "accept" | "live" | "ended";

/** A miner-side tunnel session. */
export class TunnelSession {
  readonly #d: TunnelSessionDeps;
  readonly #runners = new Map<number, RequestRunner>();
  readonly #perModel = new Map<string, number>();
  readonly #drainWaiters = new Set<() => void>();
  #phase: Phase = "challenge";
  get #ended(): boolean {
    return this.#phase === "ended";
  }
  #batcher: FrameBatcher<MinerFrame> | undefined;
  #offers: readonly ModelOffer[] = [];
  /**
   * Per model, the most this tunnel ever advertised: what it refuses past.
   * A lowered concurrency reaches the router a moment later, so requests it
   * sent under the higher one are still taken.
   */
  readonly #ceiling = new Map<string, number>();
  #liveSinceMs = 0;
  #draining: { reconnectAfterMs: number; reason: string } | undefined;
  /** Handshake deadlines, then the router-silence watch (watchdog.ts). */
  readonly #watchdog: TunnelWatchdog;
  #lastHeardMs = 0;
  #resolve!: (end: SessionEnd) => void;
  readonly #done: Promise<SessionEnd>;

  constructor(deps: TunnelSessionDeps) {
    this.#d = deps;
    this.#done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
    this.#watchdog = new TunnelWatchdog(
      {
        lastHeardMs: () => this.#lastHeardMs,
        expire: (why) => this.#protocolEnd("timeout", why),
      },
      deps.clock,
    );
  }

  /** Requests in flight. */
  get inFlight(): number {
    return this.#runners.size;
  }

  /** True once the router accepted and until the tunnel ends. */
  get live(): boolean {
    return this.#phase === "live";
  }

  /** Starts the session; resolves once the tunnel has ended. */
  run(): Promise<SessionEnd> {
    // Armed first: `start` may deliver buffered frames (or the close) at once.
    this.#watchdog.arm(this.#d.handshakeTimeoutMs, "no challenge from the router");
    this.#d.channel.start({
      message: (bytes) => this.#onMessage(bytes),
      drain: () => this.#onDrain(),
      closed: (info) => this.#onClosed(info),
    });
    return this.#done;
  }

  /** Replaces the offered models; sent to the router when live. */
  updateModels(offers: readonly ModelOffer[]): void {
    if (this.#phase !== "live") return;
    this.#setOffers(offers);
    this.#batcher?.push({ kind: { $case: "models", value: { models: [...offers] } } });
  }

  /** Ends the tunnel now (in-flight requests are abandoned; the router fails them over). */
  stop(reason: string): void {
    this.#d.channel.close("going_away", reason);
  }

  /**
   * Graceful stop from the miner's side (the mirror of a router's Drain):
   * offer no models so the router routes nothing new here, let in-flight
   * requests finish for at most `graceMs`, then hang up. Resolves once the
   * tunnel has ended.
   */
  async shutdown(graceMs: number, reason: string): Promise<void> {
    if (this.#phase !== "live" || graceMs <= 0) {
      this.stop(reason);
    } else if (this.#runners.size === 0) {
      this.#batcher?.flush();
      this.#d.channel.close("normal", reason);
    } else {
      this.updateModels([]);
      this.#draining ??= { reconnectAfterMs: 0, reason };
      const timer = this.#d.clock.setTimeout(() => this.stop(`${reason}: grace period over`), graceMs);
      await this.#done;
      this.#d.clock.clearTimeout(timer);
    }
    await this.#done;
  }

  #protocolEnd(kind: ChannelCloseKind, reason: string): void {
    this.#d.logger.warn({ reason }, "closing the tunnel");
    this.#d.channel.close(kind, reason);
  }

  #onMessage(bytes: Uint8Array): void {
    if (this.#ended) return;
    this.#lastHeardMs = this.#d.clock.now();
    let msg: ConnectResponse;
    try {
      msg = ConnectResponse.decode(bytes);
    } catch {
      this.#protocolEnd("invalid", "the router sent a message that does not decode");
      return;
    }
    for (const frame of msg.frames) {
      if (this.#ended || this.#d.channel.closed) return;
      this.#onFrame(frame);
    }
  }

  #onFrame(frame: RouterFrame): void {
    const k = frame.kind;
    if (k === undefined) return; // An unknown future frame kind: ignore it.
    if (this.#phase === "challenge") {
      if (k.$case !== "challenge") {
        this.#protocolEnd("invalid", `expected challenge, got ${k.$case}`);
        return;
      }
      this.#answer(k.value);
      return;
    }
    if (this.#phase === "accept") {
      if (k.$case === "accept") {
        const a = k.value;
        this.#goLive(a.sessionId, a.maxMessageBytes, a.pingIntervalMs, a.maxMissedPongs);
        return;
      }
      if (k.$case === "reject") {
        this.#watchdog.stop();
        this.#finish({
          kind: "rejected",
          reason: k.value.reason,
          message: k.value.message,
          retryAfterMs: k.value.retryAfterMs,
        });
        this.#d.channel.close("normal", "rejected");
        return;
      }
      this.#protocolEnd("invalid", `expected accept or reject, got ${k.$case}`);
      return;
    }
    switch (k.$case) {
      case "request":
        this.#startRequest(k.value);
        return;
      case "cancel":
        this.#runners.get(k.value.requestId)?.stop({ kind: "cancel", detail: k.value.reason });
        return;
      case "credit":
        this.#runners.get(k.value.requestId)?.grant(k.value.bytes);
        return;
      case "ping":
        this.#batcher?.push({ kind: { $case: "pong", value: { seq: k.value.seq } } });
        return;
      case "drain":
        this.#onDrainFrame(k.value.reconnectAfterMs, k.value.reason);
        return;
      case "modelsIgnored":
        this.#onModelsIgnored(k.value.modelIds, k.value.reason);
        return;
      default:
        this.#protocolEnd("invalid", `unexpected ${k.$case} on a live tunnel`);
        return;
    }
  }

  /** The router routes none of these offered ids: the operator should know (a typo, an unwanted model). */
  #onModelsIgnored(ids: readonly string[], reason: string): void {
    const shown = ids.slice(0, MAX_IGNORED_LOGGED);
    if (ids.length === 0) this.#d.logger.info("the router now routes every offered model");
    else
      this.#d.logger.warn(
        { ignored: shown, more: ids.length - shown.length, reason: reason.slice(0, 200) },
        "the router ignores some offered models",
      );
  }

  #answer(c: Challenge): void {
    const fault = challengeFault(c);
    if (fault !== undefined) {
      this.#protocolEnd("invalid", fault);
      return;
    }
    const wrongRouter = this.#d.vetRouterId(c.routerId);
    if (wrongRouter !== undefined) {
      this.#watchdog.stop();
      this.#finish({ kind: "wrong_router", message: wrongRouter });
      this.#d.channel.close("refused", "not the router this miner means to reach");
      return;
    }
    const now = this.#d.clock.now();
    const skewMs = clockSkewMs(c, now);
    if (skewMs !== undefined && Math.abs(skewMs) > CLOCK_SKEW_WARN_MS) {
      // Routers refuse hellos outside a ~30 s window: say why before the Reject does.
      this.#d.logger.warn({ skewMs }, "this machine's clock differs from the router's; sync it (NTP)");
    }
    this.#setOffers(this.#d.offers());
    const hello = buildHello(
      c,
      this.#d.hotkey,
      this.#offers,
      now,
      this.#d.softwareVersion,
      this.#d.channel.channelBinding?.(),
    );
    this.#phase = "accept";
    this.#d.channel.send(
      ConnectRequest.encode({ frames: [{ kind: { $case: "hello", value: hello } }] }).finish(),
    );
    this.#watchdog.arm(this.#d.handshakeTimeoutMs, "no accept from the router");
  }

  #goLive(sessionId: string, maxMessageBytes: number, pingIntervalMs: number, maxMissedPongs: number): void {
    this.#phase = "live";
    this.#liveSinceMs = this.#d.clock.now();
    const ch = this.#d.channel;
    this.#batcher = new FrameBatcher<MinerFrame>({
      encode: (f) => MinerFrame.encode(f).finish(),
      send: (m) => ch.send(m),
      maxMessageBytes: maxMessageBytes >= 1024 ? maxMessageBytes : DEFAULT_MAX_MESSAGE_BYTES,
      // A lone request or token leaves now; the rest of a busy turn is batched (frame-batcher.ts).
      firstAtOnce: true,
    });
    this.#watchdog.stop();
    if (pingIntervalMs > 0) this.#watchdog.watchSilence(pingIntervalMs, maxMissedPongs);
    // Models may have changed between the Hello and now.
    const current = this.#d.offers();
    if (!sameOffers(current, this.#offers)) this.updateModels(current);
    this.#d.onLive?.(sessionId);
  }

  #startRequest(req: InferenceRequest): void {
    const id = req.requestId;
    if (this.#runners.has(id)) {
      this.#protocolEnd("invalid", `request id ${id} reused while in flight`);
      return;
    }
    const fail = (code: RequestErrorCode, message: string) =>
      this.#batcher?.push({
        kind: { $case: "error", value: { requestId: id, code, message, httpStatus: 0 } },
      });
    if (this.#draining !== undefined) {
      fail(RequestErrorCode.REQUEST_ERROR_CODE_OVERLOADED, "the miner is draining this tunnel");
      return;
    }
    const offer = this.#offers.find((m) => m.id === req.model);
    if (offer === undefined) {
      fail(RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE, "the miner does not serve this model now");
      return;
    }
    const busy = this.#perModel.get(req.model) ?? 0;
    // One more than the limit: the router's probe slot (tunnel.proto, ModelOffer.max_concurrency).
    if (busy >= (this.#ceiling.get(req.model) ?? offer.maxConcurrency) + PROBE_SLOTS) {
      fail(RequestErrorCode.REQUEST_ERROR_CODE_OVERLOADED, "the model is at its concurrency limit");
      return;
    }
    const runner = new RequestRunner(
      req,
      this.#d.backend,
      this.#sink(),
      this.#d.logger,
      this.#d.clock,
      this.#d.concurrency?.start(req.model),
    );
    this.#runners.set(id, runner);
    this.#perModel.set(req.model, busy + 1);
    void runner.run().finally(() => {
      this.#runners.delete(id);
      this.#perModel.set(req.model, (this.#perModel.get(req.model) ?? 1) - 1);
      if (this.#draining !== undefined && this.#runners.size === 0) this.#finishDrain();
    });
  }

  #setOffers(offers: readonly ModelOffer[]): void {
    this.#offers = offers;
    for (const m of offers) this.#ceiling.set(m.id, Math.max(this.#ceiling.get(m.id) ?? 0, m.maxConcurrency));
  }

  #sink(): RequestSink {
    const push = (f: MinerFrame) => this.#batcher?.push(f);
    return {
      chunk: (value) => push({ kind: { $case: "chunk", value } }),
      usage: (value) => push({ kind: { $case: "usage", value } }),
      error: (value) => push({ kind: { $case: "error", value } }),
      writable: () => this.#writable(),
    };
  }

  #writable(): Promise<void> | undefined {
    if (this.#batcher === undefined || !this.#batcher.paused || this.#phase === "ended") return undefined;
    return new Promise((resolve) => this.#drainWaiters.add(resolve));
  }

  #onDrain(): void {
    this.#batcher?.resume();
    if (this.#batcher?.paused) return;
    const waiters = [...this.#drainWaiters];
    this.#drainWaiters.clear();
    for (const w of waiters) w();
  }

  #onDrainFrame(reconnectAfterMs: number, reason: string): void {
    if (this.#draining !== undefined) return;
    this.#draining = { reconnectAfterMs, reason };
    this.#d.logger.info({ reason, inFlight: this.#runners.size, reconnectAfterMs }, "drained");
    if (this.#runners.size === 0) this.#finishDrain();
  }

  #finishDrain(): void {
    // Let the last terminal frames leave in this turn's batch before hanging up.
    this.#batcher?.flush();
    const d = this.#draining;
    if (d === undefined) return;
    this.#finish({
      kind: "drained",
      connectedForMs: this.#d.clock.now() - this.#liveSinceMs,
      reconnectAfterMs: d.reconnectAfterMs,
      reason: d.reason,
    });
    this.#d.channel.close("normal", "drained");
  }

  #onClosed(info: ChannelClosed): void {
    this.#watchdog.stop();
    const reason = `${info.remote ? "closed by peer" : "closed"}: ${info.kind}${info.reason === "" ? "" : ` (${info.reason})`}`;
    if (this.#phase === "live") {
      this.#finish({ kind: "closed", connectedForMs: this.#d.clock.now() - this.#liveSinceMs, reason });
    } else {
      this.#finish({ kind: "not_established", reason });
    }
    this.#phase = "ended";
    this.#batcher?.close();
    for (const r of this.#runners.values()) r.stop({ kind: "tunnel" });
    const waiters = [...this.#drainWaiters];
    this.#drainWaiters.clear();
    for (const w of waiters) w();
  }

  /** First end wins (a Reject or a drain is more precise than the close that follows it). */
  #finish(end: SessionEnd): void {
    this.#resolve(end);
  }
}
