import type { IncomingMessage, ServerResponse } from "node:http";
import { TensorClawError, toHttpError, toTensorClawError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { ApiMetrics } from "../metrics.js";
import { modelOffered, pick, type RandomSource } from "../routing/picker.js";
import type { InferenceCall, SessionView, TunnelDispatcher } from "../tunnel/types.js";
import { ESTIMATE_BYTES_PER_TOKEN, type ReportedUsage } from "../usage/clamp.js";
import type { UsageOutcome, UsageSink } from "../usage/event.js";
import { type ChatSink, JsonSink, SseSink } from "./chat-sinks.js";
import { creditedUsage, type FinishedRequest, handOffUsage } from "./chat-usage.js";
import { parseJson, readBody } from "./http.js";
import type { ApiKeyRecord } from "./keys.js";
import { type ParsedChatRequest, parseChatBody } from "./openai-request.js";
import type { RateLimiter, Reservation } from "./rate-limiter.js";
import { type Attempt, upstreamError } from "./upstream.js";

/** Tuning of the chat endpoint. */
export interface ChatOptions {
  readonly maxBodyBytes: number;
  /** Time budget of one request, all attempts included. */
  readonly requestTimeoutMs: number;
  /** Most miners tried for one request before giving up. */
  readonly maxAttempts: number;
  /** Interval of SSE keep-alive comments while the first token is awaited. */
  readonly keepAliveMs: number;
  readonly defaultMaxTokens: number;
  readonly userSalt: string;
  /** `retry-after` sent with 503 when no miner can take the request. */
  readonly noCapacityRetryAfterMs: number;
  /** How long a model stays "known" (503, not 404) after its last miner left. */
  readonly modelMemoryMs: number;
}

/** What the chat endpoint needs from the router. */
export interface ChatDeps {
  readonly dispatcher: TunnelDispatcher;
  readonly usage: UsageSink;
  readonly limiter: RateLimiter;
  readonly metrics: ApiMetrics;
  readonly clock: () => number;
  readonly random: RandomSource;
  readonly logger: Logger;
  readonly options: ChatOptions;
  /** Feeds each answer's time to first token (ms, from dispatch) into the session's latency estimate. */
  readonly observeLatency?: (sessionId: string, ms: number) => void;
}

/** The caller, once authenticated (undefined account with --no-auth). */
export interface Caller {
  readonly key: ApiKeyRecord | undefined;
}

interface RequestState {
  readonly requestId: string;
  readonly startedAtMs: number;
  readonly parsed: ParsedChatRequest;
  /** The client went away. (A flag, not an AbortController: cheaper on the hot path.) */
  clientGone: boolean;
  /** Set once a miner was dispatched: the call whose usage counts. */
  call: InferenceCall | undefined;
  session: SessionView | undefined;
  reported: ReportedUsage | undefined;
  outcome: UsageOutcome | undefined;
  firstTokenSeen: boolean;
  /** When the current attempt was dispatched. */
  dispatchedAtMs: number;
}

/** `POST /v1/chat/completions`. Remembers models recently served, to tell 503 from 404. */
export class ChatEndpoint {
  private readonly lastSeen = new Map<string, number>();

  constructor(private readonly deps: ChatDeps) {}

  /** Serves one request; resolves to the HTTP status (200 for streams that started). */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    caller: Caller,
  ): Promise<number> {
    // The model label is "unknown" until the model is known to exist, so
    // made-up model names cannot blow up the metric's cardinality.
    const label = { model: "unknown" };
    let status = 500;
    try {
      status = await this.serve(req, res, requestId, caller, label);
    } catch (err) {
      status = toHttpError(err).status;
      throw err;
    } finally {
      this.deps.metrics.requests.inc({ model: label.model, status: String(status) });
    }
    return status;
  }

  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    caller: Caller,
    label: { model: string },
  ): Promise<number> {
    const d = this.deps;
    const startedAtMs = d.clock();
    const parsed = parseChatBody(parseJson(await readBody(req, d.options.maxBodyBytes)), {
      defaultMaxTokens: d.options.defaultMaxTokens,
      userSalt: d.options.userSalt,
      account: caller.key?.id ?? "anonymous",
    });
    this.checkModel(parsed.model, startedAtMs);
    label.model = parsed.model;
    const reserved = Math.ceil(parsed.prompt.bytes / ESTIMATE_BYTES_PER_TOKEN) + (parsed.chat.maxTokens ?? 0);
    const key = caller.key;
    let reservation: Reservation | undefined;
    if (key !== undefined) {
      const r = await d.limiter.reserve(key.id, key.limits, reserved, startedAtMs);
      if (!r.ok) {
        throw new TensorClawError("rate_limited", "Rate limit exceeded for this API key.", {
          retryAfterMs: r.retryAfterMs,
        });
      }
      reservation = r.reservation;
    }
    const st: RequestState = {
      requestId,
      startedAtMs,
      parsed,
      clientGone: false,
      call: undefined,
      session: undefined,
      reported: undefined,
      outcome: undefined,
      firstTokenSeen: false,
      dispatchedAtMs: startedAtMs,
    };
    // The client went away before we finished: cancel the miner's work at once.
    const onClose = () => {
      if (!res.writableFinished) {
        st.clientGone = true;
        st.call?.cancel("client disconnected");
      }
    };
    res.once("close", onClose);
    // It may have left while the body was read or the limiter answered.
    if (res.destroyed) st.clientGone = true;
    d.metrics.inFlight.inc();
    let status = 500;
    try {
      status = await this.relay(st, this.sink(res, st));
    } finally {
      d.metrics.inFlight.dec();
      res.off("close", onClose);
      const used = handOffUsage(d, this.finished(st));
      if (reservation !== undefined) {
        d.limiter
          .reconcile(reservation, used.promptTokens + used.completionTokens, d.clock())
          .catch((err: unknown) => d.logger.warn({ err, requestId }, "rate-limit reconcile failed"));
      }
    }
    return status;
  }

  private checkModel(model: string, nowMs: number): void {
    if (modelOffered(this.deps.dispatcher.sessions(), model)) {
      this.lastSeen.set(model, nowMs);
      return;
    }
    const seen = this.lastSeen.get(model);
    if (seen !== undefined && nowMs - seen <= this.deps.options.modelMemoryMs) return;
    this.lastSeen.delete(model);
    throw new TensorClawError("model_not_found", `The model ${JSON.stringify(model)} does not exist.`, {
      param: "model",
    });
  }

  /** The sink a request's answer goes to: SSE events when it asked to stream, else one JSON body. */
  private sink(res: ServerResponse, st: RequestState): ChatSink {
    const ident = {
      id: `chatcmpl-${st.requestId}`,
      created: Math.floor(st.startedAtMs / 1000),
      model: st.parsed.model,
    };
    return st.parsed.stream
      ? new SseSink(res, st.requestId, ident, st.parsed.includeUsage, this.deps.options.keepAliveMs)
      : new JsonSink(res, st.requestId, ident);
  }

  /**
   * The one relay loop: runs the attempts into `sink`, then writes the end
   * (the answer with its credited usage, an error, or nothing for a client
   * that left) and records the outcome. Resolves to the status logged.
   */
  private async relay(st: RequestState, sink: ChatSink): Promise<number> {
    sink.begin();
    const result = await this.attempts(st, sink);
    sink.settle();
    if (result.kind === "done") {
      st.outcome = "completed";
      return sink.complete(() => creditedUsage(this.finished(st)));
    }
    st.outcome = result.error.code === "cancelled" || sink.gone ? "cancelled" : "failed";
    if (sink.gone) return 499;
    return sink.fail(result.error);
  }

  /**
   * Tries miners until one answers: a miner that fails before any output
   * reached the user is replaced by another (at most `maxAttempts`, within
   * the request's deadline).
   */
  private async attempts(st: RequestState, sink: ChatSink): Promise<Attempt> {
    const d = this.deps;
    const model = st.parsed.model;
    const deadline = st.startedAtMs + d.options.requestTimeoutMs;
    const tried = new Set<string>();
    let last: TensorClawError | undefined;
    for (let attempt = 0; attempt < d.options.maxAttempts; attempt++) {
      if (st.clientGone) return { kind: "failed", error: new TensorClawError("cancelled") };
      const remaining = deadline - d.clock();
      if (remaining <= 0) return { kind: "failed", error: new TensorClawError("upstream_timeout") };
      const session = pick(d.dispatcher.sessions(), model, d.random, tried);
      if (session === undefined) break;
      tried.add(session.sessionId);
      let call: InferenceCall;
      try {
        call = d.dispatcher.dispatch(session.sessionId, model, st.parsed.chat, {
          deadlineMs: remaining,
        });
      } catch (err) {
        // The session filled up or left between snapshot and dispatch: try another.
        const e = toTensorClawError(err);
        if (e.code !== "no_capacity") last = e;
        continue;
      }
      st.call = call;
      st.session = session;
      st.reported = undefined;
      st.dispatchedAtMs = d.clock();
      const result = await this.attempt(st, call, sink);
      if (result.kind !== "retry") return result;
      last = result.error;
      st.call = undefined;
      st.session = undefined;
      if (attempt + 1 < d.options.maxAttempts) d.metrics.failovers.inc({ model });
    }
    return {
      kind: "failed",
      error:
        last ??
        new TensorClawError("no_capacity", `No miner can serve ${JSON.stringify(model)} right now.`, {
          retryAfterMs: d.options.noCapacityRetryAfterMs,
        }),
    };
  }

  private firstToken(st: RequestState): void {
    if (st.firstTokenSeen) return;
    st.firstTokenSeen = true;
    const now = this.deps.clock();
    this.deps.metrics.ttft.observe({ model: st.parsed.model }, (now - st.startedAtMs) / 1000);
    if (st.session !== undefined) this.deps.observeLatency?.(st.session.sessionId, now - st.dispatchedAtMs);
  }

  /** Relays one miner's answer into `sink`; says whether another miner may be tried. */
  private async attempt(st: RequestState, call: InferenceCall, sink: ChatSink): Promise<Attempt> {
    for await (const ev of call.events) {
      if (ev.type === "chunk") {
        this.firstToken(st);
        let taken = sink.chunk(ev.chunk);
        if (taken !== true && taken !== false) taken = await taken;
        if (!taken) call.cancel("client disconnected");
      } else if (ev.type === "usage") {
        st.reported = ev;
        return { kind: "done" };
      } else {
        if (st.clientGone) return { kind: "failed", error: new TensorClawError("cancelled") };
        const u = upstreamError(ev.code, ev.message, this.deps.options.noCapacityRetryAfterMs);
        // Output already reached the user (and will be credited): another miner must not start over.
        return sink.chunks === 0 && u.retry
          ? { kind: "retry", error: u.error }
          : { kind: "failed", error: u.error };
      }
    }
    return { kind: sink.chunks === 0 ? "retry" : "failed", error: new TensorClawError("upstream_error") };
  }

  private finished(st: RequestState): FinishedRequest {
    return {
      requestId: st.requestId,
      model: st.parsed.model,
      startedAtMs: st.startedAtMs,
      prompt: st.parsed.prompt,
      maxTokens: st.parsed.chat.maxTokens ?? 0,
      call: st.call,
      minerHotkey: st.session?.hotkey,
      reported: st.reported,
      outcome: st.outcome,
    };
  }
}
