/**
 * What a miner serves from: an OpenAI-compatible server over HTTP
 * (`openai.ts`) or the built-in demo model (`demo.ts`). The
 * tunnel code only sees this interface.
 */
import type { ModelKind } from "../../common/request-kinds.js";
import type {
  ChatRequest,
  CompletionRequest,
  EmbeddingRequest,
  FinishReason,
  TokenLogprob,
  ToolCallDelta,
} from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import type { StopSignal } from "./request-stop.js";

/** A model the backend says it serves. */
export interface DiscoveredModel {
  readonly id: string;
  /** Context window in tokens, 0 when the backend does not say. */
  readonly contextLength: number;
  /**
   * The kinds of request it serves, when the backend knows (the demo does);
   * undefined: the miner's configuration decides (an OpenAI-compatible
   * server does not say).
   */
  readonly kinds?: readonly ModelKind[];
}

/** A backend's answer to an embeddings request. */
export interface EmbeddingResult {
  /** One vector per input, in input order. */
  readonly vectors: readonly (readonly number[])[];
  /** The backend's count of the inputs' tokens, when it reported one. */
  readonly promptTokens: number | undefined;
}

/** One step of a backend's answer. */
export type BackendEvent =
  | {
      readonly type: "delta";
      readonly content: string;
      readonly reasoning: string;
      readonly toolCalls: readonly ToolCallDelta[];
      /** UNSPECIFIED on every delta but the last one of the answer. */
      readonly finishReason: FinishReason;
      /** Logprobs of the tokens of `content`, when the request asked for them. */
      readonly logprobs?: readonly TokenLogprob[];
      /** Which choice (0 to n - 1) the delta belongs to; absent means 0. */
      readonly choiceIndex?: number;
      /** The backend's `system_fingerprint`, when the piece it came in had one (unbounded here). */
      readonly systemFingerprint?: string;
    }
  | {
      readonly type: "usage";
      readonly promptTokens: number;
      readonly completionTokens: number;
    };

/** Facts about one request a backend may pass on (never the prompt: that is the ChatRequest). */
export interface RequestContext {
  /**
   * The router's id of the request (InferenceRequest.trace_id): an HTTP
   * backend sends it as `x-request-id`, so its log joins the miner's and the
   * router's. Empty when the router sent none.
   */
  readonly traceId: string;
}

/** A backend that can list its models and stream chat completions. */
export interface Backend {
  /** Short description for logs (never contains the key). */
  readonly description: string;
  /** The models served now; throws a BackendFailure when the backend is unreachable or broken. */
  listModels(signal: AbortSignal): Promise<DiscoveredModel[]>;
  /**
   * Streams one chat completion. Pull-based: the backend is read only as
   * fast as the caller iterates, so a caller that stops iterating stops
   * reading the backend. Aborting `signal` ends the call (the iterator
   * throws). Failures throw a BackendFailure.
   */
  chat(
    model: string,
    chat: ChatRequest,
    signal: StopSignal,
    ctx?: RequestContext,
  ): AsyncIterable<BackendEvent>;
  /**
   * Streams one legacy text completion (absent: the backend serves none),
   * pulled like `chat`; each delta names its choice (prompt × n + sample).
   */
  complete?(
    model: string,
    req: CompletionRequest,
    signal: StopSignal,
    ctx?: RequestContext,
  ): AsyncIterable<BackendEvent>;
  /**
   * Embeds every input (absent: the backend serves no embeddings). Aborting
   * `signal` ends the call. Failures throw a BackendFailure.
   */
  embed?(
    model: string,
    req: EmbeddingRequest,
    signal: StopSignal,
    ctx?: RequestContext,
  ): Promise<EmbeddingResult>;
}

/** A request-level failure with the code the router should see. */
export class BackendFailure extends Error {
  readonly code: RequestErrorCode;
  /** The HTTP status the backend answered with (RequestError.http_status); 0 when it did not answer one. */
  readonly httpStatus: number;

  /** `message` may reach the user: no keys, no internal addresses. */
  constructor(code: RequestErrorCode, message: string, options?: { cause?: unknown; httpStatus?: number }) {
    super(message, options);
    this.name = "BackendFailure";
    this.code = code;
    this.httpStatus = options?.httpStatus ?? 0;
  }
}

/** The code for an HTTP error status from the backend. */
export function codeForHttpStatus(status: number): RequestErrorCode {
  if (status === 429) return RequestErrorCode.REQUEST_ERROR_CODE_OVERLOADED;
  if (status === 408 || status === 504) return RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT;
  // 401/403 mean the miner's own key is wrong: the user's request is fine.
  if (status === 401 || status === 403) return RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR;
  if (status === 404) return RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE;
  if (status >= 400 && status < 500) return RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST;
  if (status === 502 || status === 503) return RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE;
  return RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR;
}
