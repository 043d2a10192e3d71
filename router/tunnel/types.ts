import type { ModelKind } from "../../common/request-kinds.js";
import type { ChatRequest, CompletionRequest, EmbeddingRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { RequestErrorCode, ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";

/** How a session's tunnel is carried. Nothing above the hub should branch on it. */
export type TransportKind = "grpc" | "ws";

/** Where a session is in its life (TunnelSession.phase). */
export type SessionPhase = "handshake" | "admitting" | "live" | "draining" | "closed";

/** Whether a session gets traffic. */
export type SessionState = "active" | "ghost" | "banned" | "draining";

/** One offered model of a session, with its live load. */
export interface SessionModel {
  readonly id: string;
  readonly maxConcurrency: number;
  readonly contextLength: number;
  readonly inFlight: number;
  /** The kinds of request it serves (common/request-kinds.ts); absent: chat only. */
  readonly kinds?: readonly ModelKind[];
}

/**
 * An immutable view of one tunnel session at one moment: what the picker,
 * the directory and /v1/models read. Taking a new snapshot is cheap.
 */
export interface SessionView {
  readonly sessionId: string;
  readonly hotkey: string;
  readonly transport: TransportKind;
  readonly state: SessionState;
  readonly models: readonly SessionModel[];
  /** Requests in flight on this session, all models. */
  readonly inFlight: number;
  /**
   * Smoothed latency estimate in ms (ping round trips, and samples fed to
   * TunnelHub.observeLatency); 0 before any measurement. Routing does not
   * use it: it judges hotkeys by real time to first token (routing/book.ts).
   */
  readonly latencyMs: number;
  readonly connectedSinceMs: number;
  readonly softwareVersion: string;
}

/** The text of an answer as relayed, kept apart by kind (each is tokenized on its own). */
export interface RelayedText {
  readonly content: string;
  readonly reasoning: string;
  /** Tool-call function names and argument fragments, in order. */
  readonly tools: string;
}

/** What was relayed of one choice of an answer (`n` > 1 gives several). */
export interface RelayedChoice extends RelayedText {
  /** UTF-8 bytes of answer relayed for this choice (see InferenceCall.relayedBytes). */
  readonly bytes: number;
}

/** What comes back from a miner for one request, in order. */
export type TunnelEvent =
  /**
   * A piece of the answer, as the miner sent it. Its `logprobs` (when the
   * request asked for them) are within the protocol's limits
   * (common/chunk-logprobs.ts), but their values are the miner's: bound them
   * (`boundedLogprob`) before showing or judging them.
   */
  | { readonly type: "chunk"; readonly chunk: ResponseChunk }
  | {
      readonly type: "usage";
      /** Counts as the miner reported them (not yet bounded: see the usage clamp). */
      readonly promptTokens: number;
      readonly completionTokens: number;
    }
  | {
      readonly type: "error";
      readonly code: RequestErrorCode;
      readonly message: string;
      /** RequestError.http_status as the miner sent it, when not 0: a claim, not a fact. */
      readonly httpStatus?: number;
    };

/** One request in flight on a tunnel. */
export interface InferenceCall {
  /**
   * The miner's answer. Ends after exactly one `usage` or `error` event. If
   * the tunnel dies, the deadline passes or the call is cancelled, it ends
   * with an `error` event (codes BACKEND_UNAVAILABLE, TIMEOUT, CANCELLED).
   * Reading slowly applies back-pressure to this request only.
   */
  readonly events: AsyncIterable<TunnelEvent>;
  /**
   * Total UTF-8 bytes of answer relayed so far (content, reasoning, tool
   * calls; not logprobs, which are no part of the answer), for the usage clamp.
   */
  readonly relayedBytes: () => number;
  /** The answer's text relayed so far, by kind: what the router counts the completion's tokens from. */
  readonly relayedText: () => RelayedText;
  /**
   * The same per choice, indexed by `choice_index` (a choice that sent
   * nothing is empty): the router bounds each choice's credit on its own.
   */
  readonly relayedChoices: () => readonly RelayedChoice[];
  /** Sends Cancel to the miner and ends `events`. Idempotent. */
  cancel(reason: string): void;
}

/**
 * What one dispatch carries: a chat request as it is, or a request of
 * another kind (tunnel.proto, InferenceRequest: exactly one is set).
 */
export type DispatchBody =
  | ChatRequest
  | { readonly completion: CompletionRequest }
  | { readonly embedding: EmbeddingRequest };

/** Options for one dispatch. */
export interface DispatchOptions {
  /** Time budget for the whole request, in ms. */
  readonly deadlineMs: number;
  /** Aborting it cancels the call (the user went away). */
  readonly signal?: AbortSignal;
  /** Dispatch to a ghost session too: only probes, which are how a ghost comes back. */
  readonly allowGhost?: boolean;
  /**
   * A probe: it takes an ordinary slot like a user request while the model
   * has one free, and the tunnel's spare probe slot (outside the model's
   * concurrency limit, one per tunnel) only when the model is full.
   */
  readonly probe?: boolean;
  /**
   * The request's id as the miner sees it (`InferenceRequest.trace_id`): the
   * user's `x-request-id`, or a probe's id drawn the same way. Absent: a
   * fresh random one, so no request ever goes out without one.
   */
  readonly traceId?: string;
}

/**
 * The tunnel hub's internal API: the only way the rest of the router talks
 * to miners. Its callers are the Business API and the Probe service.
 */
export interface TunnelDispatcher {
  /** Every open session, as an immutable snapshot. */
  sessions(): readonly SessionView[];
  /** The open sessions that route `model` (those of `sessions()` whose models include it). */
  sessionsOffering(model: string): readonly SessionView[];
  /**
   * Sends a request (chat, or another kind: DispatchBody) to one session.
   * Throws a TensorClawError `no_capacity` when the session is gone, not
   * active, lacks the model or its kind, or is at the model's concurrency
   * limit.
   */
  dispatch(sessionId: string, model: string, body: DispatchBody, opts: DispatchOptions): InferenceCall;
  /** Marks every session of a hotkey ghost (true) or active again (false). */
  setGhost(hotkey: string, ghost: boolean): void;
  /**
   * Calls `listener` after anything that may change what `sessions()`
   * returns (a slot taken or freed, a session going live or closing, a new
   * model list); returns the unsubscribe function.
   */
  onChange(listener: () => void): () => void;
}
