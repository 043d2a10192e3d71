import type { Server } from "@grpc/grpc-js";
import { type Clock, systemClock } from "../../common/clock.js";
import { TensorClawError } from "../../common/errors.js";
import { unaryHandler } from "../../common/grpc-unary.js";
import { isValidHotkey } from "../../common/identity.js";
import type { Logger } from "../../common/logger.js";
import type { ValidatorAuth } from "../../common/validator-call/server.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import {
  type ProbeRequest,
  type ProbeResponse,
  type ProbeServiceServer,
  ProbeServiceService,
} from "../../gen/tensorclaw/v1/probe.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import type { InferenceCall, SessionView, TunnelDispatcher } from "../tunnel/types.js";
import { probePrompt } from "./probe-prompt.js";
import { type TrafficShapeRecorder, trafficShapeHandler } from "./traffic-shape.js";

/** The probe deadline (probe.proto): the router's, whatever a validator asks. */
export const DEFAULT_PROBE_DEADLINE_MS = 8000;
/** Completion tokens a probe asks for. */
export const PROBE_MAX_TOKENS = 5;
/** Probes in a row a hotkey may dodge by having no free probe slot before it counts as failed. */
export const DEFAULT_MAX_UNPROBEABLE = 3;

/** What the probe service needs. */
export interface ProbeServiceDeps {
  readonly dispatcher: TunnelDispatcher;
  /** Monotonic-enough ms clock for measuring (performance.now is fine). */
  readonly now: () => number;
  /** Unix ms for `finished_at_ms`, and the probe's own guard timer; default the system clock. */
  readonly clock?: Clock;
  /** Uniform in [0, 1): prompt text and model choice. */
  readonly random: () => number;
  readonly logger: Logger;
  /** The probe deadline (default 8 s; shorter only in tests of this router's own). */
  readonly deadlineMs?: number;
  /** See DEFAULT_MAX_UNPROBEABLE. */
  readonly maxUnprobeable?: number;
  /** The user traffic's shape, served by GetTrafficShape (UNIMPLEMENTED without one). */
  readonly trafficShape?: TrafficShapeRecorder;
}

/** Where a probe goes: one tunnel of the hotkey, and one of the models it offers. */
export interface ProbeTarget {
  readonly session: SessionView;
  readonly model: string;
}

/**
 * Every (tunnel, model) a probe of `hotkey` may go to: the hotkey's live
 * tunnels (active or ghost — a ghost must be probed to come back; draining
 * and banned ones take no traffic), each with each model it offers (only
 * `model` when given). Sorted, so a seeded draw is reproducible.
 */
export function probeTargets(sessions: readonly SessionView[], hotkey: string, model: string): ProbeTarget[] {
  const out: ProbeTarget[] = [];
  for (const s of sessions) {
    if (s.hotkey !== hotkey || (s.state !== "active" && s.state !== "ghost")) continue;
    for (const m of s.models) if (model === "" || m.id === model) out.push({ session: s, model: m.id });
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
 * ProbeService: sends one real chat request (a fresh random prompt, at most
 * five tokens, streamed through the same dispatch path as user traffic) to
 * a miner and reports how it went. A failure or timeout makes the miner a
 * ghost (out of the routing pool); a pass restores it. Probe tokens are never
 * recorded as usage: this service has no usage sink at all.
 */
export class ProbeService {
  readonly #d: ProbeServiceDeps;
  readonly #deadlineMs: number;
  readonly #maxUnprobeable: number;
  /** Per hotkey: probes in a row that found no free probe slot. */
  readonly #unprobeable = new Map<string, number>();

  constructor(deps: ProbeServiceDeps) {
    this.#d = deps;
    this.#deadlineMs = deps.deadlineMs ?? DEFAULT_PROBE_DEADLINE_MS;
    this.#maxUnprobeable = deps.maxUnprobeable ?? DEFAULT_MAX_UNPROBEABLE;
  }

  /** Runs one probe. Throws `invalid_request` or `not_found` (see probe.proto). */
  async probe(req: ProbeRequest): Promise<ProbeResponse> {
    if (!isValidHotkey(req.hotkey)) {
      throw new TensorClawError("invalid_request", "hotkey is not an SS58 address", { param: "hotkey" });
    }
    // The deadline is the router's: `timeout_ms` is ignored, so no validator can ghost a
    // healthy miner with a deadline nobody meets.
    const timeoutMs = this.#deadlineMs;
    const targets = probeTargets(this.#d.dispatcher.sessions(), req.hotkey, req.model);
    if (targets.length === 0) {
      throw new TensorClawError(
        "not_found",
        req.model === ""
          ? `no tunnel is open for ${req.hotkey}`
          : `no tunnel of ${req.hotkey} offers ${req.model}`,
      );
    }
    // The drawn tunnel first, then the others offering its model: each tunnel has one probe slot.
    const first = drawProbeTarget(targets, this.#d.random) as ProbeTarget;
    const order = [first, ...targets.filter((t) => t.model === first.model && t !== first)];
    for (const target of order) {
      const result = await this.#run(target.session, target.model, timeoutMs);
      if (result === "busy") continue;
      this.#unprobeable.delete(req.hotkey);
      return this.#verdict(req.hotkey, target, result);
    }
    // Every probe slot taken (probes from several validators at once): not the miner's fault,
    // unless it keeps happening.
    const misses = (this.#unprobeable.get(req.hotkey) ?? 0) + 1;
    this.#unprobeable.set(req.hotkey, misses);
    if (misses < this.#maxUnprobeable) {
      throw new TensorClawError("no_capacity", `${req.hotkey} has no free probe slot; not probed`);
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
      finishedAtMs: BigInt(Math.floor((this.#d.clock ?? systemClock).now())),
      content: "",
      finishReason: 0,
      logprobs: [],
      cut: false,
    });
  }

  #verdict(hotkey: string, target: ProbeTarget, result: ProbeResponse): ProbeResponse {
    this.#d.dispatcher.setGhost(hotkey, !result.ok);
    this.#d.logger.info(
      {
        hotkey,
        sessionId: target.session.sessionId,
        model: target.model,
        ok: result.ok,
        latencyMs: result.latencyMs,
      },
      result.ok ? "probe passed" : "probe failed: miner is a ghost",
    );
    return result;
  }

  async #run(session: SessionView, model: string, timeoutMs: number): Promise<ProbeResponse | "busy"> {
    const chat = ChatRequest.fromPartial({
      messages: [{ role: "user", content: probePrompt(this.#d.random) }],
      maxTokens: PROBE_MAX_TOKENS,
      // Streamed, so the miner's time to first token is what gets measured.
      stream: true,
    });
    const started = this.#d.now();
    let ttftMs = 0;
    let completionTokens = 0;
    let sawToken = false;
    let error = "";
    let clean = false;
    const abort = new AbortController();
    // Our own guard: the call must end at the deadline even if the tunnel misbehaves.
    const clock = this.#d.clock ?? systemClock;
    const guard = clock.setTimeout(() => abort.abort(), timeoutMs + 50);
    let call: InferenceCall;
    try {
      call = this.#d.dispatcher.dispatch(session.sessionId, model, chat, {
        deadlineMs: timeoutMs,
        signal: abort.signal,
        allowGhost: true,
        probe: true,
      });
    } catch (err) {
      clock.clearTimeout(guard);
      // Probe slot taken, or the tunnel left since the snapshot: the router could not probe here.
      if (err instanceof TensorClawError && err.code === "no_capacity") return "busy";
      throw err;
    }
    try {
      for await (const e of call.events) {
        if (e.type === "chunk") {
          if (
            !sawToken &&
            (e.chunk.contentDelta !== "" || e.chunk.reasoningDelta !== "" || e.chunk.toolCalls.length > 0)
          ) {
            sawToken = true;
            ttftMs = this.#d.now() - started;
          }
        } else if (e.type === "usage") {
          completionTokens = Math.max(0, Math.min(e.completionTokens, 0xffff_ffff));
          clean = true;
        } else {
          error = `${RequestErrorCode[e.code] ?? e.code}: ${e.message}`;
        }
      }
    } catch (err) {
      error = err instanceof TensorClawError ? `${err.code}: ${err.message}` : "probe stream failed";
    } finally {
      clock.clearTimeout(guard);
    }
    const latencyMs = Math.min(this.#d.now() - started, timeoutMs);
    const late = this.#d.now() - started > timeoutMs;
    const ok = clean && sawToken && !late && error === "";
    if (!ok && error === "") error = late ? "timeout" : sawToken ? "no clean finish" : "no token";
    return {
      ok,
      ghost: !ok,
      ttftMs: sawToken ? ttftMs : 0,
      latencyMs,
      completionTokens,
      error: ok ? "" : error,
      model,
      sessionId: session.sessionId,
      finishedAtMs: BigInt(Math.floor(clock.now())),
      content: "",
      finishReason: 0,
      logprobs: [],
      cut: false,
    };
  }
}

/** The grpc-js implementation of ProbeService over a {@link ProbeService}. */
export function probeServiceImplementation(
  service: ProbeService,
  logger: Logger,
  trafficShape?: TrafficShapeRecorder,
): ProbeServiceServer {
  const probe = unaryHandler<ProbeRequest, ProbeResponse>(ProbeServiceService.probe.path, logger, (call) =>
    service.probe(call.request),
  );
  const unimplemented = (_call: unknown, callback: (err: Error & { code: number }) => void) =>
    callback(Object.assign(new Error("not implemented yet"), { code: 12 }));
  return { probe, getTrafficShape: trafficShapeHandler(trafficShape, logger), reportVerdicts: unimplemented };
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
