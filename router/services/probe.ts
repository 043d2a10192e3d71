import type { Server, ServerUnaryCall } from "@grpc/grpc-js";
import { type Clock, systemClock } from "../../common/clock.js";
import { TensorClawError } from "../../common/errors.js";
import { unaryHandler } from "../../common/grpc-unary.js";
import { isValidHotkey } from "../../common/identity.js";
import type { Logger } from "../../common/logger.js";
import { kindFromProto, kindToProto, type ModelKind, offersKind } from "../../common/request-kinds.js";
import { DEFAULT_ENCODING, type Encodings, type TokenCount } from "../../common/tokens/encodings.js";
import { newTraceId } from "../../common/trace-id.js";
import { type ValidatorAuth, verifiedValidator } from "../../common/validator-call/server.js";
import type { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import {
  type ProbeRequest,
  type ProbeResponse,
  type ProbeServiceServer,
  ProbeServiceService,
  type ReportVerdictsRequest,
  type ReportVerdictsResponse,
} from "../../gen/tensorclaw/v1/probe.js";
import { RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import type { WaitEnd } from "../api/capacity-queue.js";
import type { ModelCatalogue } from "../catalogue/catalogue.js";
import type { InferenceCall, SessionView, TunnelDispatcher } from "../tunnel/types.js";
import { ESTIMATE_BYTES_PER_TOKEN } from "../usage/clamp.js";
import { type ProbeChatRules, parseProbeBody } from "./probe-body.js";
import { probeBody, probeKind, runEmbeddingProbe } from "./probe-kinds.js";
import { type ProbeQueue, QueuedProbe } from "./probe-queue.js";
import { LIVENESS_MS, runProbe } from "./probe-run.js";
import { type TrafficShapeRecorder, trafficShapeHandler } from "./traffic-shape.js";
import { reportVerdicts, type VerdictBook } from "./verdicts.js";

/** Probes in a row a hotkey may dodge by having no free slot before it counts as failed. */
export const DEFAULT_MAX_UNPROBEABLE = 3;
/**
 * Longest a probe waits for a moment when a user request would have gone to
 * its tunnel. The wait counts inside the 8 s liveness deadline.
 */
export const DEFAULT_ARRIVAL_HOLD_MS = 500;
/**
 * Longest a probe waits, its hold included, for a user-like moment on a
 * tunnel whose slots for its model were all taken when the hold ran out,
 * before it takes a slot that came free meanwhile, or else the spare probe
 * slot: a request past `max_concurrency` is a probe for sure. Leaves at
 * least 6 s of the 8 s liveness deadline for the answer.
 */
export const DEFAULT_FULL_WAIT_MS = 2_000;
/** Mean gap between two looks for that moment (exponential, so the looks fall at random times). */
export const ARRIVAL_TRIAL_GAP_MS = 20;

/** The routing decision a probe imitates (RoutingBook.trial). */
export interface ProbeArrivalRouting {
  trial(
    sessions: readonly SessionView[],
    model: string,
    target: { readonly hotkey: string; readonly sessionId: string },
    kind: ModelKind,
  ): "yes" | "no" | "never";
}

/** What the probe service needs. */
export interface ProbeServiceDeps {
  readonly dispatcher: TunnelDispatcher;
  /** Monotonic-enough ms clock for measuring (performance.now is fine). */
  readonly now: () => number;
  /**
   * Unix ms — the deadline rule (as the Business API's clock), `finished_at_ms` —
   * and the liveness timer; default the system clock.
   */
  readonly clock?: Clock;
  /** Uniform in [0, 1): which model and tunnel is probed. */
  readonly random: () => number;
  readonly logger: Logger;
  /** The Business API's request rules: defaults, limits, `user` salt and deadline. */
  readonly chat: ProbeChatRules;
  /** The model catalogue in force (the tokenizer the router counts a model's tokens with). */
  readonly catalogue: () => ModelCatalogue;
  readonly encodings: Encodings;
  /** Where ReportVerdicts puts the validators' verdicts (routing reads it). */
  readonly verdicts: VerdictBook;
  /** The liveness deadline (LIVENESS_MS; shorter only in tests of this router's own). */
  readonly livenessMs?: number;
  /** See DEFAULT_MAX_UNPROBEABLE. */
  readonly maxUnprobeable?: number;
  /** The user traffic's shape, served by GetTrafficShape (UNIMPLEMENTED without one). */
  readonly trafficShape?: TrafficShapeRecorder;
  /**
   * How user requests are routed (the router's RoutingBook): a probe is sent
   * at a moment when a user request would have gone to its tunnel (see
   * ProbeService). Absent: probes go at once.
   */
  readonly routing?: ProbeArrivalRouting;
  /** See DEFAULT_ARRIVAL_HOLD_MS. */
  readonly arrivalHoldMs?: number;
  /** See DEFAULT_FULL_WAIT_MS (never shorter than the arrival hold). */
  readonly fullWaitMs?: number;
  /** Told how long each probe was held before dispatch, and how the hold ended (a metric). */
  readonly onArrivalHold?: (heldMs: number, outcome: ArrivalHoldOutcome) => void;
  /**
   * The Business API's capacity queue: a probe of a full tunnel waits in it
   * while users of its model do (probe-queue.ts). Absent: it never queues.
   */
  readonly queue?: ProbeQueue;
}

/**
 * How a probe's hold ended: a trial would have sent a user request there
 * (`user_like`), no user request could reach the tunnel (`unreachable`: a
 * ghost, a barred hotkey, a tunnel gone), the hold ran out with the tunnel
 * busier than users find it but with a free slot (`expired`: such a probe
 * may be told from users), the tunnel was full and the probe got a slot of
 * it in the capacity queue, behind users waiting too (`queued`), or the
 * tunnel stayed full for the whole wait (`full`: the probe takes the spare
 * slot, where it is told for sure).
 */
export type ArrivalHoldOutcome = "user_like" | "unreachable" | "expired" | "queued" | "full";

/** A probe sent: its call, and when (ProbeServiceDeps.now). */
interface Dispatched {
  readonly call: InferenceCall;
  readonly sentMs: number;
}

/** Where a probe goes: one tunnel of the hotkey, and one of the models it offers. */
export interface ProbeTarget {
  readonly session: SessionView;
  readonly model: string;
  /** What the probe is sent as. */
  readonly kind: ModelKind;
}

/**
 * Every (tunnel, model) a probe of `hotkey` may go to: the hotkey's live
 * tunnels (active or ghost — a ghost must be probed to come back; draining
 * and banned ones take no traffic), each with each model it offers (only
 * `model` when given) and the kind the probe is sent as: `kind` when given
 * (only models offered as it), else chat when the model serves chat, else
 * what it serves (probe-kinds.ts). Sorted, so a seeded draw is reproducible.
 */
export function probeTargets(
  sessions: readonly SessionView[],
  hotkey: string,
  model: string,
  asKind?: ModelKind,
): ProbeTarget[] {
  const out: ProbeTarget[] = [];
  for (const s of sessions) {
    if (s.hotkey !== hotkey || (s.state !== "active" && s.state !== "ghost")) continue;
    for (const m of s.models) {
      const kind =
        asKind === undefined ? probeKind(m.kinds) : offersKind(m.kinds, asKind) ? asKind : undefined;
      if ((model === "" || m.id === model) && kind !== undefined) out.push({ session: s, model: m.id, kind });
    }
  }
  return out.sort((a, b) =>
    a.model < b.model ? -1 : a.model > b.model ? 1 : a.session.sessionId < b.session.sessionId ? -1 : 1,
  );
}

/**
 * Draws a probe's target: a model uniformly among those the hotkey offers,
 * then one of the tunnels offering it uniformly, so over time every model
 * and every tunnel of a hotkey is probed — a miner cannot keep one good
 * tunnel for probes and others for users. The verdict applies to the hotkey.
 */
export function drawProbeTarget(
  targets: readonly ProbeTarget[],
  random: () => number,
): ProbeTarget | undefined {
  const models = [...new Set(targets.map((t) => t.model))];
  const model = models[Math.min(models.length - 1, Math.floor(random() * models.length))];
  const tunnels = targets.filter((t) => t.model === model);
  return tunnels[Math.min(tunnels.length - 1, Math.floor(random() * tunnels.length))];
}

/**
 * ProbeService: sends a validator's chat request to one miner through the
 * same dispatch path as user traffic (probe.proto; tunnel.proto explains why
 * the frame is a user's), judges liveness (probe-run.ts) and returns the
 * answer for the validator to check. A failure makes the miner a ghost (out
 * of the routing pool); a pass restores it. Probe tokens are never recorded
 * as usage (this service has no usage sink at all), and probes do not go
 * through the routing book, so they never count in its user outcomes.
 *
 * A probe names its miner; a user request goes where the balancer sends it,
 * which is seldom to a miner busier than the others. Sent at once, probes
 * would reach miners when they are busier than users ever find them, and
 * the requests in flight on arrival would tell a miner which is which. So a
 * probe waits (up to `arrivalHoldMs`) for the first of a series of trials,
 * at random times, in which the balancer would have chosen its tunnel for a
 * user request (picker.ts, pickTrial): it arrives in the states users'
 * requests arrive in. A tunnel no user request could reach now (a ghost, a
 * barred miner) is probed at once: there is nothing to imitate.
 */
export class ProbeService {
  readonly #d: ProbeServiceDeps;
  readonly #clock: Clock;
  readonly #livenessMs: number;
  readonly #maxUnprobeable: number;
  readonly #arrivalHoldMs: number;
  readonly #fullWaitMs: number;
  /** Per hotkey: probes in a row that found no free slot. */
  readonly #unprobeable = new Map<string, number>();
  /** Probes waiting in the capacity queue. */
  readonly #queued = new Set<QueuedProbe<Dispatched>>();

  constructor(deps: ProbeServiceDeps) {
    this.#d = deps;
    this.#clock = deps.clock ?? systemClock;
    this.#livenessMs = deps.livenessMs ?? LIVENESS_MS;
    this.#maxUnprobeable = deps.maxUnprobeable ?? DEFAULT_MAX_UNPROBEABLE;
    this.#arrivalHoldMs = deps.arrivalHoldMs ?? DEFAULT_ARRIVAL_HOLD_MS;
    this.#fullWaitMs = Math.max(this.#arrivalHoldMs, deps.fullWaitMs ?? DEFAULT_FULL_WAIT_MS);
  }

  /**
   * Runs one probe for the validator `validator` (its verified hotkey).
   * Throws `invalid_request`, `not_found` or `no_capacity` (see probe.proto).
   */
  async probe(req: ProbeRequest, validator: string): Promise<ProbeResponse> {
    // The user rule: the deadline runs from when the request came in.
    const receivedAtMs = this.#clock.now();
    if (!isValidHotkey(req.hotkey)) {
      throw new TensorClawError("invalid_request", "hotkey is not an SS58 address", { param: "hotkey" });
    }
    const kind = kindFromProto(req.kind);
    if (kind === undefined && req.kind !== RequestKind.REQUEST_KIND_UNSPECIFIED) {
      throw new TensorClawError(
        "invalid_request",
        `kind ${req.kind} is not a request kind this router knows`,
        {
          param: "kind",
        },
      );
    }
    const { chat } = parseProbeBody(req.requestJson, validator, this.#d.chat);
    const targets = probeTargets(this.#d.dispatcher.sessions(), req.hotkey, req.model, kind);
    if (targets.length === 0) {
      const as = kind === undefined ? "" : ` as ${kind}`;
      let what = `no tunnel is open for ${req.hotkey}`;
      if (req.model !== "") what = `no tunnel of ${req.hotkey} offers ${req.model}${as}`;
      else if (kind !== undefined) what = `no tunnel of ${req.hotkey} offers a model${as}`;
      throw new TensorClawError("not_found", what);
    }
    // The drawn tunnel first, then the others offering its model.
    const first = drawProbeTarget(targets, this.#d.random) as ProbeTarget;
    const order = [first, ...targets.filter((t) => t.model === first.model && t !== first)];
    const send = (target: ProbeTarget) => this.#dispatch(target, chat, receivedAtMs);
    // The hold counts inside the liveness deadline: the router answers within 8 s of the call.
    const moment =
      this.#d.routing === undefined
        ? { heldMs: 0, sent: undefined }
        : await this.#userLikeMoment(first, this.#d.routing, () => send(first));
    const livenessMs = Math.max(1, this.#livenessMs - moment.heldMs);
    for (const target of order) {
      const sent = target === first && moment.sent !== undefined ? moment.sent : send(target);
      if (sent === undefined) continue;
      const result = await this.#relay(target, sent, req.cutAfterTokens, livenessMs);
      this.#unprobeable.delete(req.hotkey);
      return this.#verdict(req.hotkey, target, result);
    }
    // Every slot taken, the spare ones too: not the miner's fault, unless it keeps happening.
    const misses = (this.#unprobeable.get(req.hotkey) ?? 0) + 1;
    this.#unprobeable.set(req.hotkey, misses);
    if (misses < this.#maxUnprobeable) {
      throw new TensorClawError("no_capacity", `${req.hotkey} has no free slot for a probe; not probed`);
    }
    this.#unprobeable.delete(req.hotkey);
    return this.#verdict(req.hotkey, first, {
      ok: false,
      ghost: true,
      ttftMs: 0,
      latencyMs: 0,
      completionTokens: 0,
      error: `not probeable for ${misses} probes in a row`,
      model: first.model,
      sessionId: first.session.sessionId,
      finishedAtMs: BigInt(Math.floor(this.#clock.now())),
      content: "",
      finishReason: 0,
      logprobs: [],
      cut: false,
      livenessMs: 0,
      embeddings: [],
      kind: kindToProto(first.kind),
    });
  }

  /** Applies a validator's verdicts (probe.proto ReportVerdicts). */
  reportVerdicts(req: ReportVerdictsRequest, validator: string): ReportVerdictsResponse {
    return reportVerdicts(this.#d.verdicts, req, validator, this.#d.logger);
  }

  #verdict(hotkey: string, target: ProbeTarget, result: ProbeResponse): ProbeResponse {
    this.#d.dispatcher.setGhost(hotkey, !result.ok);
    this.#d.logger.info(
      {
        hotkey,
        sessionId: target.session.sessionId,
        model: target.model,
        ok: result.ok,
        cut: result.cut,
        latencyMs: result.latencyMs,
        ...(result.ok ? {} : { error: result.error }),
      },
      result.ok ? "probe passed" : "probe failed: miner is a ghost",
    );
    return result;
  }

  /**
   * Waits until the balancer would send a user request to the target (see
   * the class comment). When the arrival hold runs out, a tunnel with a free
   * slot for the model gets the probe at once. A full one goes on being
   * tried for a user-like moment until the full wait runs out, then gets the
   * probe in a free slot if one came up, else in the spare slot: sent the
   * moment a slot frees, a probe would follow the miner's own release of a
   * slot more closely than users do. While users of its model wait in the
   * capacity queue (every slot that frees goes to them), a full tunnel's
   * probe waits there with them as well (probe-queue.ts); `sent` is the
   * probe when the queue dispatched it (with `send`). Returns how long it
   * waited, in ms.
   */
  async #userLikeMoment(
    target: ProbeTarget,
    routing: ProbeArrivalRouting,
    send: () => Dispatched | undefined,
  ): Promise<{ heldMs: number; sent: Dispatched | undefined }> {
    let queued: QueuedProbe<Dispatched> | undefined;
    try {
      const heldMs = await this.#hold(target, routing, (fullUntil) => {
        queued = this.#joinQueue(target, fullUntil, send);
        return queued?.ended;
      });
      return { heldMs, sent: queued?.sent };
    } finally {
      if (queued !== undefined) {
        queued.leave();
        this.#queued.delete(queued);
      }
    }
  }

  /**
   * A probe of a full tunnel joins the capacity queue, until `fullUntil`, if
   * users of its model wait there (else undefined). It dispatches from the
   * queue only into an ordinary slot of its own tunnel.
   */
  #joinQueue(
    target: ProbeTarget,
    fullUntil: number,
    send: () => Dispatched | undefined,
  ): QueuedProbe<Dispatched> | undefined {
    const queue = this.#d.queue;
    if (queue === undefined || !queue.ahead(target.model, target.kind)) return undefined;
    const { sessionId } = target.session;
    const q: QueuedProbe<Dispatched> = new QueuedProbe(
      queue,
      target,
      fullUntil,
      () =>
        freeSlot(this.#d.dispatcher.sessionsOffering(target.model), sessionId, target.model) === true
          ? send()
          : undefined,
      () => [...this.#queued].filter((p) => p.inLine(target.model, target.kind)).length,
    );
    this.#queued.add(q);
    return q;
  }

  /**
   * The hold itself (see #userLikeMoment). `queue` is called once, when the
   * tunnel is full at the end of the arrival hold; the wait it may return
   * ends the hold ("queued") when it resolves "served".
   */
  async #hold(
    target: ProbeTarget,
    routing: ProbeArrivalRouting,
    queue: (fullUntil: number) => Promise<WaitEnd> | undefined,
  ): Promise<number> {
    const since = this.#clock.now();
    const holdUntil = since + this.#arrivalHoldMs;
    const fullUntil = since + this.#fullWaitMs;
    const at = { hotkey: target.session.hotkey, sessionId: target.session.sessionId };
    const held = (outcome: ArrivalHoldOutcome) => {
      const ms = this.#clock.now() - since;
      this.#d.onArrivalHold?.(ms, outcome);
      if (outcome === "expired" || outcome === "full") {
        this.#d.logger.debug(
          { hotkey: at.hotkey, model: target.model, outcome },
          "probe sent without a user-like moment",
        );
      }
      return ms;
    };
    /** Past the hold: sent now if the tunnel has a free slot (or is gone), else while `waitOver`. */
    const afterHold = (sessions: readonly SessionView[], waitOver: boolean) => {
      const slot = freeSlot(sessions, at.sessionId, target.model);
      if (slot === undefined) return held("unreachable");
      if (slot) return held("expired");
      return waitOver ? held("full") : undefined;
    };
    /** The tunnel was full when the hold ran out: trials go on until the full wait is over. */
    let fullAtHold = false;
    /** Set while the probe waits in the capacity queue: true once the queue dispatched it. */
    let served: Promise<boolean> | undefined;
    for (;;) {
      // The model's miners only: a trial every ~20 ms per held probe must not scan the whole subnet.
      const sessions = this.#d.dispatcher.sessionsOffering(target.model);
      const now = this.#clock.now();
      if (now >= holdUntil && !fullAtHold) {
        const sent = afterHold(sessions, false);
        if (sent !== undefined) return sent;
        fullAtHold = true;
        served = queue(fullUntil)?.then((end) => end === "served");
      }
      const trial = routing.trial(sessions, target.model, at, target.kind);
      if (trial !== "no") return held(trial === "yes" ? "user_like" : "unreachable");
      const gap = -Math.log(1 - Math.min(this.#d.random(), 0.999_999)) * ARRIVAL_TRIAL_GAP_MS;
      if (now + gap > fullUntil) return afterHold(sessions, true) as number;
      // The first look past the hold falls at its end, not a gap after it.
      const sleep = this.#clock.sleep(now < holdUntil && now + gap > holdUntil ? holdUntil - now : gap);
      if (served === undefined) {
        await sleep;
        continue;
      }
      // A wait in the queue that ends unserved (timed out, or the queue full) leaves the trials.
      const queueEnded = served.then((yes) => (yes ? "served" : "unserved"));
      const woke = await Promise.race([sleep.then(() => "slept" as const), queueEnded]);
      if (woke === "served") return held("queued");
      if (woke === "unserved") served = undefined;
    }
  }

  /** The model's token counter; while its tokenizer loads, the bytes estimate the usage clamp uses. */
  #counter(model: string): TokenCount {
    const tokenizer = this.#d.catalogue().resolve(model)?.tokenizer ?? DEFAULT_ENCODING;
    return (
      this.#d.encodings.get(tokenizer) ??
      ((text) => Math.ceil(Buffer.byteLength(text, "utf8") / ESTIMATE_BYTES_PER_TOKEN))
    );
  }

  /**
   * Sends the probe to the target's tunnel; undefined when it has no slot
   * free (the spare one included) or left since the snapshot.
   */
  #dispatch(target: ProbeTarget, chat: ChatRequest, receivedAtMs: number): Dispatched | undefined {
    // A user request's deadline: the request timeout, measured from when it came in (chat.ts).
    const deadlineMs = Math.max(1, receivedAtMs + this.#d.chat.requestTimeoutMs - this.#clock.now());
    const sentMs = this.#d.now();
    try {
      const call = this.#d.dispatcher.dispatch(
        target.session.sessionId,
        target.model,
        probeBody(chat, target.kind),
        {
          deadlineMs,
          allowGhost: true,
          probe: true,
          // Drawn like a user request's x-request-id, so the id cannot single a probe out.
          traceId: newTraceId(),
        },
      );
      return { call, sentMs };
    } catch (err) {
      // No free slot, or the tunnel left since the snapshot: the router could not probe here.
      if (err instanceof TensorClawError && err.code === "no_capacity") return undefined;
      throw err;
    }
  }

  /** Relays a sent probe and judges it. */
  async #relay(
    target: ProbeTarget,
    { call, sentMs }: Dispatched,
    cutAfterTokens: number,
    livenessMs: number,
  ): Promise<ProbeResponse> {
    const r =
      target.kind === "embedding"
        ? await runEmbeddingProbe(call, sentMs, {
            livenessMs,
            now: this.#d.now,
            clock: this.#clock,
            keepVectors: cutAfterTokens === 0,
          })
        : await runProbe(call, sentMs, {
            cutAfterTokens,
            livenessMs,
            count: this.#counter(target.model),
            now: this.#d.now,
            clock: this.#clock,
          });
    return {
      ghost: !r.ok,
      model: target.model,
      sessionId: target.session.sessionId,
      finishedAtMs: BigInt(Math.floor(this.#clock.now())),
      kind: kindToProto(target.kind),
      ...r,
    };
  }
}

/** The verified validator of a call (ValidatorAuth); refuses one that did not go through it. */
function callerOf(call: ServerUnaryCall<unknown, unknown>): string {
  const hotkey = verifiedValidator(call);
  if (hotkey === undefined) throw new TensorClawError("unauthenticated", "validator signature required");
  return hotkey;
}

/**
 * The grpc-js implementation of ProbeService over a {@link ProbeService}.
 * Register it behind ValidatorAuth: its handlers read the verified caller.
 */
export function probeServiceImplementation(
  service: ProbeService,
  logger: Logger,
  trafficShape?: TrafficShapeRecorder,
): ProbeServiceServer {
  const probe = unaryHandler<ProbeRequest, ProbeResponse>(ProbeServiceService.probe.path, logger, (call) =>
    service.probe(call.request, callerOf(call)),
  );
  const reportVerdicts = unaryHandler<ReportVerdictsRequest, ReportVerdictsResponse>(
    ProbeServiceService.reportVerdicts.path,
    logger,
    (call) => service.reportVerdicts(call.request, callerOf(call)),
  );
  return { probe, getTrafficShape: trafficShapeHandler(trafficShape, logger), reportVerdicts };
}

/**
 * Registers ProbeService on a router's gRPC server behind validator-call
 * authentication; returns the service.
 */
export function addProbeService(server: Server, auth: ValidatorAuth, deps: ProbeServiceDeps): ProbeService {
  const service = new ProbeService(deps);
  const wrapped = auth.wrap(
    ProbeServiceService,
    probeServiceImplementation(service, deps.logger, deps.trafficShape),
  );
  server.addService(wrapped.definition, wrapped.implementation);
  return service;
}

/**
 * Whether the tunnel has an ordinary slot free for the model (what the miner
 * counts against its `max_concurrency`); undefined when the tunnel or the
 * model is gone.
 */
function freeSlot(sessions: readonly SessionView[], sessionId: string, model: string): boolean | undefined {
  const m = sessions.find((s) => s.sessionId === sessionId)?.models.find((x) => x.id === model);
  return m === undefined ? undefined : m.inFlight < m.maxConcurrency;
}
