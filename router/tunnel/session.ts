import { BinaryReader } from "@bufbuild/protobuf/wire";
import type { Timer } from "../../common/clock.js";
import { TensorClawError } from "../../common/errors.js";
import { FrameBatcher } from "../../common/frame-batcher.js";
import type { ChannelClosed, ChannelCloseKind, FrameChannel } from "../../common/frame-channel.js";
import { newTraceId } from "../../common/trace-id.js";
import {
  ConnectRequest,
  type MinerFrame,
  RequestErrorCode,
  RouterFrame,
} from "../../gen/tensorclaw/v1/tunnel.js";
import { TunnelCall } from "./call.js";
import { type HandshakeDeps, TunnelHandshake } from "./handshake.js";
import { type Offer, validateOffers } from "./hello.js";
import { chunkCheckFor, dispatchChoices, dispatchKind } from "./kind-check.js";
import { LivenessTracker } from "./liveness.js";
import { chooseSlot } from "./slot-choice.js";
import type {
  DispatchBody,
  DispatchOptions,
  InferenceCall,
  SessionPhase,
  SessionView,
  TransportKind,
} from "./types.js";

export type { SessionPhase } from "./types.js";

/** Callbacks from a session to its hub. */
export interface SessionEvents {
  /** The hello was accepted; the session may now be dispatched to. */
  live(session: TunnelSession): void;
  /** Something `view()` shows changed (slots, models, latency, ghost, drain). */
  changed(session: TunnelSession): void;
  /** The session ended (whatever the phase). Runs once. */
  closed(session: TunnelSession, info: ChannelClosed): void;
}

/** What one session depends on (the handshake's deps, and these). */
export interface SessionDeps extends HandshakeDeps {
  readonly channel: FrameChannel;
  readonly sessionId: string;
  /** Whether a hotkey is currently ghost (a new session of a ghost starts ghost). */
  readonly isGhost: (hotkey: string) => boolean;
  /** Which offered models are routed, under which id (the router's model catalogue). */
  readonly models: () => ModelFilter;
  readonly events: SessionEvents;
}

const MAX_REQUEST_ID = 0xffffffff;
/** `InferenceRequest.deadline_ms` is a multiple of this (tunnel.proto). */
export const WIRE_DEADLINE_STEP_MS = 1000;

/** Maps an offered model id to the id the router routes it under, or undefined when it is not routed. */
export interface ModelFilter {
  canonical(offeredId: string): string | undefined;
}

/** Every offered id routes under its own name (a router without a catalogue). */
export const ROUTE_EVERY_MODEL: ModelFilter = { canonical: (id) => id };

/** Why ModelsIgnored names a model. */
const IGNORED_REASON = "not in the router's model catalogue";

/**
 * One tunnel: the phase state machine, request multiplexing by request_id,
 * per-model concurrency, liveness and drain; the Challenge/Hello/Reject
 * exchange is its TunnelHandshake (handshake.ts). It talks to the
 * miner only through a FrameChannel, so it is the same for gRPC and WS.
 */
export class TunnelSession {
  readonly sessionId: string;
  readonly #d: SessionDeps;
  readonly #batcher: FrameBatcher<RouterFrame>;
  #phase: SessionPhase = "handshake";
  #hotkey = "";
  #softwareVersion = "";
  #offers: readonly Offer[] = [];
  /** Routed id → the offer serving it (the catalogue applied to #offers). */
  #routes = new Map<string, Offer>();
  /** The probe holding this tunnel's spare probe slot, if any (slot-choice.ts). */
  #spare: TunnelCall | undefined;
  /** The ignored ids last told to the miner. */
  #ignoredSent: readonly string[] = [];
  #ghost = false;
  #connectedSinceMs = 0;
  readonly #calls = new Map<number, TunnelCall>();
  /** Slots held per model (includes cancelled calls the miner has not answered yet). */
  readonly #slots = new Map<string, number>();
  #slotsTotal = 0;
  /** Bumped whenever a slot is taken or freed: the cached view's per-model inFlight is stale then. */
  #slotsVersion = 0;
  /** The last snapshot, with the slots version and routes it was made from (see `view`). */
  #view:
    | {
        readonly view: SessionView;
        readonly slotsVersion: number;
        readonly routes: ReadonlyMap<string, Offer>;
      }
    | undefined;
  #nextRequestId = 1;
  readonly #handshake: TunnelHandshake;
  #pingTimer: Timer | undefined;
  #drainTimer: Timer | undefined;
  /** A ModelListUpdate that came within `modelUpdateGapMs` of the last one applied: it waits for #offersTimer. */
  #offersPending: readonly Offer[] | undefined;
  #offersTimer: Timer | undefined;
  #offersAppliedAtMs = Number.NEGATIVE_INFINITY;
  readonly #liveness: LivenessTracker;

  constructor(deps: SessionDeps) {
    this.#d = deps;
    this.sessionId = deps.sessionId;
    this.#liveness = new LivenessTracker(deps.timings.maxMissedPongs);
    this.#batcher = new FrameBatcher<RouterFrame>({
      encode: (f) => RouterFrame.encode(f).finish(),
      send: (m) => deps.channel.send(m),
      maxMessageBytes: deps.timings.maxMessageBytes,
      // A lone request or token leaves now; the rest of a busy turn is batched (frame-batcher.ts).
      firstAtOnce: true,
    });
    this.#handshake = new TunnelHandshake(deps, {
      phase: () => this.#phase,
      send: (kind) => this.#send(kind),
      close: (kind, reason) => this.close(kind, reason),
      accepted: (hotkey, offers, softwareVersion) => this.#goLive(hotkey, offers, softwareVersion),
    });
  }

  /** Sends the challenge and starts the hello timer. */
  start(): void {
    this.#d.channel.start({
      message: (bytes) => this.#onMessage(bytes),
      drain: () => this.#batcher.resume(),
      closed: (info) => this.#onClosed(info),
    });
    if (this.#phase === "closed") return;
    this.#handshake.start();
  }

  /** Where the session is in its life. */
  get phase(): SessionPhase {
    return this.#phase;
  }

  /** The remote end, as the transport names it (for the hub's per-address caps). */
  get peer(): string {
    return this.#d.channel.peer;
  }

  /** The verified hotkey ("" before Accept). */
  get hotkey(): string {
    return this.#hotkey;
  }

  /** The transport carrying this session (for the directory only). */
  get transport(): TransportKind {
    return this.#d.channel.transport;
  }

  /**
   * The routed model ids, each with the offer serving it. The map is
   * replaced, never changed in place, when the offers or the catalogue
   * change: a new map means new routes.
   */
  get routes(): ReadonlyMap<string, Offer> {
    return this.#routes;
  }

  /** Requests holding a concurrency slot. */
  get inFlight(): number {
    return this.#slotsTotal;
  }

  /**
   * An immutable snapshot for the picker and the directory. The router asks
   * every session for one several times per request, so the last one is
   * kept while everything it shows is unchanged (each field compared, not
   * trusted to an event): with hundreds of miners, rebuilding them was most
   * of the router's CPU per request.
   */
  view(): SessionView {
    const state = this.#phase === "draining" ? "draining" : this.#ghost ? "ghost" : "active";
    const c = this.#view;
    if (
      c !== undefined &&
      c.slotsVersion === this.#slotsVersion &&
      c.routes === this.#routes &&
      c.view.state === state &&
      c.view.latencyMs === this.#liveness.latencyMs &&
      c.view.hotkey === this.#hotkey &&
      c.view.connectedSinceMs === this.#connectedSinceMs &&
      c.view.softwareVersion === this.#softwareVersion
    )
      return c.view;
    const view: SessionView = Object.freeze({
      sessionId: this.sessionId,
      hotkey: this.#hotkey,
      transport: this.transport,
      state,
      models: Object.freeze(
        [...this.#routes].map(([id, o]) =>
          Object.freeze({
            id,
            maxConcurrency: o.maxConcurrency,
            contextLength: o.contextLength,
            inFlight: this.#slots.get(o.id) ?? 0,
            kinds: o.kinds,
          }),
        ),
      ),
      inFlight: this.#slotsTotal,
      latencyMs: this.#liveness.latencyMs,
      connectedSinceMs: this.#connectedSinceMs,
      softwareVersion: this.#softwareVersion,
    });
    this.#view = { view, slotsVersion: this.#slotsVersion, routes: this.#routes };
    return view;
  }

  /**
   * Applies the router's model catalogue to the offers: which ids are routed
   * (under which name) and, when the set of ignored ids changed, tells the
   * miner with ModelsIgnored. Called on Accept, on ModelListUpdate and by
   * the hub when the catalogue changes.
   */
  applyModelFilter(): void {
    if (this.#phase !== "live" && this.#phase !== "draining") return;
    const filter = this.#d.models();
    const routes = new Map<string, Offer>();
    const ignored: string[] = [];
    for (const o of this.#offers) {
      const id = filter.canonical(o.id);
      if (id === undefined) ignored.push(o.id);
      else if (!routes.has(id)) routes.set(id, o);
    }
    this.#routes = routes;
    ignored.sort();
    if (ignored.join("\n") === this.#ignoredSent.join("\n")) return;
    this.#ignoredSent = ignored;
    this.#send({ $case: "modelsIgnored", value: { modelIds: ignored, reason: IGNORED_REASON } });
    if (ignored.length > 0) {
      this.#d.logger.info(
        { sessionId: this.sessionId, hotkey: this.#hotkey, ignored },
        "offered models not in the catalogue are ignored",
      );
    }
  }

  /** Marks the session ghost (no traffic) or active again. */
  setGhost(ghost: boolean): void {
    this.#ghost = ghost;
    this.#d.events.changed(this);
  }

  /** Blends a latency sample (ms) into the estimate (ping RTT or a caller's TTFT). */
  observeLatency(ms: number): void {
    this.#liveness.observe(ms);
    this.#d.events.changed(this);
  }

  /**
   * Sends one request. Throws `no_capacity` when the session is not live
   * and active, does not offer the model or its kind, or is at its
   * concurrency limit.
   */
  dispatch(model: string, body: DispatchBody, opts: DispatchOptions): InferenceCall {
    if (this.#phase !== "live" || (this.#ghost && opts.allowGhost !== true)) {
      throw new TensorClawError("no_capacity", `session ${this.sessionId} is not taking requests`);
    }
    const offer = this.#routes.get(model);
    if (offer === undefined) {
      throw new TensorClawError("no_capacity", `session ${this.sessionId} does not offer ${model}`);
    }
    const kind = dispatchKind(body);
    if (!offer.kinds.includes(kind)) {
      throw new TensorClawError(
        "no_capacity",
        `session ${this.sessionId} does not offer ${kind} for ${model}`,
      );
    }
    // From here on the miner's own name for the model: it is what its backend knows.
    const offered = offer.id;
    // A probe takes an ordinary slot like a user request while one is free; the spare probe
    // slot outside max_concurrency only when the model is full (slot-choice.ts, tunnel.proto).
    const slot = chooseSlot(
      {
        held: this.#slots.get(offered) ?? 0,
        spareHeldByModel: this.#spare?.model === offered,
        spareTaken: this.#spare !== undefined,
        maxConcurrency: offer.maxConcurrency,
      },
      opts.probe === true,
    );
    if (slot === undefined) {
      throw new TensorClawError(
        "no_capacity",
        opts.probe === true
          ? `session ${this.sessionId} has no free slot for a probe of ${model}`
          : `session ${this.sessionId} is at capacity for ${model}`,
      );
    }
    if (opts.signal?.aborted === true) throw new TensorClawError("cancelled");
    if (this.#nextRequestId > MAX_REQUEST_ID) {
      // Ids are never reused within a tunnel; a tunnel this old is retired.
      this.drain("request ids exhausted");
      throw new TensorClawError("no_capacity", `session ${this.sessionId} is retiring`);
    }
    const deadlineMs = Math.min(Math.max(1, Math.ceil(opts.deadlineMs)), MAX_REQUEST_ID);
    // The frame carries the budget rounded up to a whole second: the milliseconds a user request
    // spends in the router before dispatch (body, rate limit) would otherwise set it apart from a
    // probe's. The call itself ends at the exact budget.
    const wireDeadlineMs = Math.min(
      Math.ceil(deadlineMs / WIRE_DEADLINE_STEP_MS) * WIRE_DEADLINE_STEP_MS,
      MAX_REQUEST_ID,
    );
    const requestId = this.#nextRequestId++;
    const initialCreditBytes = this.#d.timings.initialCreditBytes;
    const frame: RouterFrame = {
      kind: {
        $case: "request",
        value: {
          requestId,
          model: offered,
          chat: "messages" in body ? body : undefined,
          completion: "completion" in body ? body.completion : undefined,
          embedding: "embedding" in body ? body.embedding : undefined,
          deadlineMs: wireDeadlineMs,
          initialCreditBytes,
          traceId: opts.traceId ?? newTraceId(),
        },
      },
    };
    try {
      this.#batcher.push(frame);
    } catch (cause) {
      throw new TensorClawError("payload_too_large", "the request is too large for the tunnel", { cause });
    }
    const call = new TunnelCall(
      requestId,
      offered,
      this.#callHost,
      { initialCreditBytes, cancelGraceMs: this.#d.timings.cancelGraceMs, choices: dispatchChoices(body) },
      this.#d.clock,
      chunkCheckFor(body),
    );
    this.#calls.set(requestId, call);
    if (slot === "spare") this.#spare = call;
    this.#slots.set(offered, (this.#slots.get(offered) ?? 0) + 1);
    this.#slotsTotal++;
    this.#slotsVersion++;
    call.arm(deadlineMs, opts.signal);
    this.#d.events.changed(this);
    return call;
  }

  /**
   * Sends Drain: no new work; the tunnel closes once in-flight requests
   * finish, or when the grace runs out (failing what is left).
   */
  drain(reason: string): void {
    if (this.#phase === "closed" || this.#phase === "draining") return;
    if (this.#phase !== "live") {
      this.close("going_away", `router draining: ${reason}`);
      return;
    }
    this.#phase = "draining";
    this.#send({
      $case: "drain",
      value: { reconnectAfterMs: this.#d.timings.drainReconnectAfterMs, reason },
    });
    this.#drainTimer = this.#d.clock.setTimeout(
      () => this.close("going_away", `drain grace of ${this.#d.timings.drainGraceMs} ms expired`),
      this.#d.timings.drainGraceMs,
      { unref: true },
    );
    this.#d.events.changed(this);
    this.#maybeFinishDrain();
  }

  /** Closes the tunnel now; in-flight calls fail with BACKEND_UNAVAILABLE. Idempotent. */
  close(kind: ChannelCloseKind, reason: string): void {
    if (this.#phase === "closed") return;
    // Frames queued this turn (Reject, Drain) go out before the close.
    this.#batcher.flush();
    this.#d.channel.close(kind, reason);
    // Adapters report the close through `closed`; make sure it happened.
    this.#onClosed({ kind, reason, remote: false });
  }

  // ---- inbound ----

  #onMessage(bytes: Uint8Array): void {
    if (this.#phase === "closed") return;
    let message: ConnectRequest;
    try {
      checkTopLevelTags(bytes);
      const reader = new BinaryReader(bytes);
      message = ConnectRequest.decode(reader);
      // The generated decoder stops quietly at an end-group tag; trailing bytes mean garbage.
      if (reader.pos !== reader.len) throw new Error(`${reader.len - reader.pos} trailing bytes`);
    } catch (err) {
      this.close("invalid", `message does not decode: ${(err as Error).message}`);
      return;
    }
    for (const frame of message.frames) {
      // A frame may close the tunnel; the rest of the batch is then moot.
      if ((this.#phase as SessionPhase) === "closed") return;
      this.#onFrame(frame);
    }
  }

  #onFrame(frame: MinerFrame): void {
    const kind = frame.kind;
    if (this.#phase === "handshake") {
      if (kind?.$case !== "hello") {
        this.close("invalid", `expected Hello as the first frame, got ${kind?.$case ?? "an empty frame"}`);
        return;
      }
      this.#phase = "admitting";
      void this.#handshake.onHello(kind.value);
      return;
    }
    if (this.#phase === "admitting") {
      this.close("invalid", `frame ${kind?.$case ?? "(empty)"} sent before Accept`);
      return;
    }
    switch (kind?.$case) {
      case "chunk":
        this.#calls.get(kind.value.requestId)?.onChunk(kind.value);
        return;
      case "usage":
        this.#calls.get(kind.value.requestId)?.onUsage(kind.value.promptTokens, kind.value.completionTokens);
        return;
      case "error":
        this.#calls
          .get(kind.value.requestId)
          ?.onError(kind.value.code, kind.value.message, kind.value.httpStatus);
        return;
      case "pong":
        if (this.#liveness.pong(kind.value.seq, this.#d.clock.now()) !== undefined)
          this.#d.events.changed(this);
        return;
      case "models": {
        const offers = validateOffers(kind.value.models);
        if (typeof offers === "string") {
          this.close("invalid", `invalid ModelListUpdate: ${offers}`);
          return;
        }
        this.#updateOffers(offers);
        return;
      }
      case "hello":
        this.close("invalid", "a second Hello on a live tunnel");
        return;
      case undefined:
        // An unknown frame kind from a newer peer: skipped, as protobuf skips unknown fields.
        return;
    }
  }

  /** The handshake admitted the miner: send Accept, start pinging, tell the hub. */
  #goLive(hotkey: string, offers: readonly Offer[], softwareVersion: string): void {
    this.#hotkey = hotkey;
    this.#offers = offers;
    this.#softwareVersion = softwareVersion;
    this.#ghost = this.#d.isGhost(hotkey);
    this.#connectedSinceMs = this.#d.clock.now();
    this.#phase = "live";
    const t = this.#d.timings;
    this.#send({
      $case: "accept",
      value: {
        sessionId: this.sessionId,
        pingIntervalMs: t.pingIntervalMs,
        maxMissedPongs: t.maxMissedPongs,
        maxMessageBytes: t.maxMessageBytes,
      },
    });
    this.applyModelFilter();
    this.#pingTimer = this.#d.clock.setInterval(() => this.#ping(), t.pingIntervalMs, { unref: true });
    this.#d.logger.info(
      {
        sessionId: this.sessionId,
        hotkey: this.#hotkey,
        transport: this.transport,
        models: this.#offers.length,
      },
      "tunnel session live",
    );
    this.#d.events.live(this);
  }

  /**
   * Takes a valid ModelListUpdate. Each one applied re-filters the offers,
   * may answer ModelsIgnored and wakes every hub watcher (the capacity
   * queue's drain among them), and one stream message can carry thousands:
   * so at most one is applied per `modelUpdateGapMs`. One that comes sooner
   * waits for the gap's end, and a later one replaces it (each carries the
   * whole list, so only the last counts). An honest miner sends at most one
   * per 250 ms (miner/model-catalog.ts) and never waits.
   */
  #updateOffers(offers: readonly Offer[]): void {
    this.#offersPending = offers;
    if (this.#offersTimer !== undefined) return;
    const wait = this.#offersAppliedAtMs + this.#d.timings.modelUpdateGapMs - this.#d.clock.now();
    if (wait <= 0) {
      this.#applyPendingOffers();
      return;
    }
    this.#offersTimer = this.#d.clock.setTimeout(
      () => {
        this.#offersTimer = undefined;
        this.#applyPendingOffers();
      },
      wait,
      { unref: true },
    );
  }

  #applyPendingOffers(): void {
    const offers = this.#offersPending;
    if (offers === undefined || this.#phase === "closed") return;
    this.#offersPending = undefined;
    this.#offersAppliedAtMs = this.#d.clock.now();
    this.#offers = offers;
    this.applyModelFilter();
    this.#d.events.changed(this);
  }

  #ping(): void {
    const d = this.#liveness.tick(this.#d.clock.now());
    if (d.action === "close") this.close("timeout", `${d.unanswered} pings unanswered`);
    else this.#send({ $case: "ping", value: { seq: d.seq } });
  }

  // ---- calls ----

  readonly #callHost = {
    sendCancel: (requestId: number, reason: string): void => {
      this.#send({ $case: "cancel", value: { requestId, reason } });
    },
    sendCredit: (requestId: number, bytes: number): void => {
      this.#send({ $case: "credit", value: { requestId, bytes } });
    },
    ended: (): void => {},
    released: (call: TunnelCall): void => {
      if (this.#calls.get(call.requestId) !== call) return;
      this.#calls.delete(call.requestId);
      if (this.#spare === call) this.#spare = undefined;
      const n = (this.#slots.get(call.model) ?? 1) - 1;
      if (n <= 0) this.#slots.delete(call.model);
      else this.#slots.set(call.model, n);
      this.#slotsTotal--;
      this.#slotsVersion++;
      this.#d.events.changed(this);
      this.#maybeFinishDrain();
    },
  };

  #maybeFinishDrain(): void {
    if (this.#phase === "draining" && this.#slotsTotal === 0) this.close("normal", "drained");
  }

  #send(kind: NonNullable<RouterFrame["kind"]>): void {
    if (this.#phase === "closed") return;
    this.#batcher.push({ kind });
  }

  #onClosed(info: ChannelClosed): void {
    if (this.#phase === "closed") return;
    this.#phase = "closed";
    this.#handshake.stop();
    this.#d.clock.clearInterval(this.#pingTimer);
    this.#d.clock.clearTimeout(this.#drainTimer);
    this.#d.clock.clearTimeout(this.#offersTimer);
    this.#batcher.close();
    const calls = [...this.#calls.values()];
    for (const call of calls) {
      call.fail(
        RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE,
        `the miner's tunnel closed (${info.kind}: ${info.reason})`,
      );
    }
    this.#d.logger.info(
      {
        sessionId: this.sessionId,
        hotkey: this.#hotkey,
        kind: info.kind,
        reason: info.reason,
        remote: info.remote,
      },
      "tunnel session closed",
    );
    this.#d.events.closed(this, info);
  }
}

/**
 * Walks the top level of a stream message, tag by tag. The generated decoder
 * stops without a word at a zero byte where a tag should be, so a valid
 * message followed by stray zero bytes would pass; BinaryReader.tag() refuses
 * field number 0 and skip() refuses lengths past the end. Costs a step per
 * frame, not per byte.
 */
function checkTopLevelTags(bytes: Uint8Array): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const at = r.pos;
    try {
      const [field, wireType] = r.tag();
      r.skip(wireType, field);
    } catch (err) {
      throw new Error(`bad field at byte ${at} of ${r.len}: ${(err as Error).message}`);
    }
  }
}
