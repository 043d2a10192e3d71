import type { Server } from "@grpc/grpc-js";
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

/** Default probe deadline (probe.proto). */
export const PROBE_DEFAULT_TIMEOUT_MS = 8000;
/** Largest deadline a validator may ask for (probe.proto). */
export const PROBE_MAX_TIMEOUT_MS = 30_000;
/** Completion tokens a probe asks for. */
export const PROBE_MAX_TOKENS = 5;

/** What the probe service needs. */
export interface ProbeServiceDeps {
  readonly dispatcher: TunnelDispatcher;
  /** Monotonic-enough ms clock for measuring (performance.now is fine). */
  readonly now: () => number;
  /** Unix ms, for `finished_at_ms`. */
  readonly wallClock: () => number;
  /** Uniform in [0, 1): prompt text and model choice. */
  readonly random: () => number;
  readonly logger: Logger;
}

/**
 * The session a probe goes to: among the hotkey's live sessions (active or
 * ghost — a ghost must be probed to come back; draining and banned ones take
 * no traffic) offering `model` (any model when empty), the least loaded,
 * then the fastest, then by id so the choice is deterministic.
 */
export function pickProbeSession(
  sessions: readonly SessionView[],
  hotkey: string,
  model: string,
): SessionView | undefined {
  const candidates = sessions.filter(
    (s) =>
      s.hotkey === hotkey &&
      (s.state === "active" || s.state === "ghost") &&
      s.models.length > 0 &&
      (model === "" || s.models.some((m) => m.id === model)),
  );
  candidates.sort(
    (a, b) =>
      a.inFlight - b.inFlight ||
      a.latencyMs - b.latencyMs ||
      (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0),
  );
  return candidates[0];
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

  constructor(deps: ProbeServiceDeps) {
    this.#d = deps;
  }

  /** Runs one probe. Throws `invalid_request` or `not_found` (see probe.proto). */
  async probe(req: ProbeRequest): Promise<ProbeResponse> {
    if (!isValidHotkey(req.hotkey)) {
      throw new TensorClawError("invalid_request", "hotkey is not an SS58 address", { param: "hotkey" });
    }
    if (req.timeoutMs > PROBE_MAX_TIMEOUT_MS) {
      throw new TensorClawError("invalid_request", `timeout_ms must be at most ${PROBE_MAX_TIMEOUT_MS}`, {
        param: "timeout_ms",
      });
    }
    const timeoutMs = req.timeoutMs === 0 ? PROBE_DEFAULT_TIMEOUT_MS : req.timeoutMs;
    const session = pickProbeSession(this.#d.dispatcher.sessions(), req.hotkey, req.model);
    if (session === undefined) {
      throw new TensorClawError(
        "not_found",
        req.model === ""
          ? `no tunnel is open for ${req.hotkey}`
          : `no tunnel of ${req.hotkey} offers ${req.model}`,
      );
    }
    // A miner saturated by real traffic is busy, not dead: it is not probed
    // (and not ghosted); the validator records nothing for it this round.
    const spare = session.models.filter((m) => m.inFlight < m.maxConcurrency);
    const choices = req.model === "" ? spare : spare.filter((m) => m.id === req.model);
    const picked = choices[Math.min(choices.length - 1, Math.floor(this.#d.random() * choices.length))];
    if (picked === undefined) {
      throw new TensorClawError("no_capacity", `${req.hotkey} is at capacity; not probed`);
    }
    const model = picked.id;
    const result = await this.#run(session, model, timeoutMs);
    if (result === "busy")
      throw new TensorClawError("no_capacity", `${req.hotkey} is at capacity; not probed`);
    this.#d.dispatcher.setGhost(req.hotkey, !result.ok);
    this.#d.logger.info(
      { hotkey: req.hotkey, sessionId: session.sessionId, model, ok: result.ok, latencyMs: result.latencyMs },
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
    const guard = setTimeout(() => abort.abort(), timeoutMs + 50);
    let call: InferenceCall;
    try {
      call = this.#d.dispatcher.dispatch(session.sessionId, model, chat, {
        deadlineMs: timeoutMs,
        signal: abort.signal,
        allowGhost: true,
      });
    } catch (err) {
      clearTimeout(guard);
      // Full or gone between the snapshot and now: the router could not probe, the miner did not fail.
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
      clearTimeout(guard);
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
      finishedAtMs: BigInt(Math.floor(this.#d.wallClock())),
    };
  }
}

/** The grpc-js implementation of ProbeService over a {@link ProbeService}. */
export function probeServiceImplementation(service: ProbeService, logger: Logger): ProbeServiceServer {
  const probe = unaryHandler<ProbeRequest, ProbeResponse>(ProbeServiceService.probe.path, logger, (call) =>
    service.probe(call.request),
  );
  return { probe };
}

/**
 * Registers ProbeService on a router's gRPC server behind validator-call
 * authentication; returns the service.
 */
export function addProbeService(server: Server, auth: ValidatorAuth, deps: ProbeServiceDeps): ProbeService {
  const service = new ProbeService(deps);
  const wrapped = auth.wrap(ProbeServiceService, probeServiceImplementation(service, deps.logger));
  server.addService(wrapped.definition, wrapped.implementation);
  return service;
}
