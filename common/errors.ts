import type { status as GrpcStatus } from "@grpc/grpc-js";

/**
 * The gRPC status codes the catalogue uses, with the values the gRPC spec fixes
 * (the same as grpc-js's `status` enum). Written out rather than imported:
 * every command, even `--help`, loads this file, and loading grpc-js costs
 * ~0.1 s.
 */
const GRPC = {
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  PERMISSION_DENIED: 7,
  UNIMPLEMENTED: 12,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const satisfies Record<string, GrpcStatus>;

/**
 * The closed set of error codes TensorClaw uses at every boundary. Each code
 * maps to exactly one gRPC status and one HTTP status + OpenAI error type.
 */
export type ErrorCode =
  | "invalid_json"
  | "invalid_request"
  | "context_length_exceeded"
  | "payload_too_large"
  | "unsupported_media_type"
  | "method_not_allowed"
  | "unauthenticated"
  | "invalid_api_key"
  | "permission_denied"
  | "not_found"
  | "model_not_found"
  | "rate_limited"
  | "insufficient_quota"
  | "no_capacity"
  | "upstream_timeout"
  | "upstream_error"
  | "cancelled"
  | "unavailable"
  | "protocol_error"
  | "config_invalid"
  | "internal";

/** How one code leaves the process on each kind of boundary. */
export interface ErrorMapping {
  /** gRPC status code. */
  readonly grpc: GrpcStatus;
  /** HTTP status code. */
  readonly http: number;
  /** OpenAI `error.type`. */
  readonly openaiType: string;
  /** Message used when the detail must not leave the process. */
  readonly publicMessage: string;
}

/** The catalogue: one row per code, the single table every boundary reads. */
export const ERROR_CATALOGUE: Readonly<Record<ErrorCode, ErrorMapping>> = Object.freeze({
  invalid_json: {
    grpc: GRPC.INVALID_ARGUMENT,
    http: 400,
    openaiType: "invalid_request_error",
    publicMessage: "The request body is not valid JSON.",
  },
  invalid_request: {
    grpc: GRPC.INVALID_ARGUMENT,
    http: 400,
    openaiType: "invalid_request_error",
    publicMessage: "The request is invalid.",
  },
  context_length_exceeded: {
    grpc: GRPC.INVALID_ARGUMENT,
    http: 400,
    openaiType: "invalid_request_error",
    publicMessage: "The request does not fit the model's context length.",
  },
  payload_too_large: {
    grpc: GRPC.RESOURCE_EXHAUSTED,
    http: 413,
    openaiType: "invalid_request_error",
    publicMessage: "The request body is too large.",
  },
  unsupported_media_type: {
    grpc: GRPC.INVALID_ARGUMENT,
    http: 415,
    openaiType: "invalid_request_error",
    publicMessage: "The request body must be JSON (content-type: application/json).",
  },
  method_not_allowed: {
    grpc: GRPC.UNIMPLEMENTED,
    http: 405,
    openaiType: "invalid_request_error",
    publicMessage: "This method is not allowed here.",
  },
  unauthenticated: {
    grpc: GRPC.UNAUTHENTICATED,
    http: 401,
    openaiType: "authentication_error",
    publicMessage: "Authentication is required.",
  },
  invalid_api_key: {
    grpc: GRPC.UNAUTHENTICATED,
    http: 401,
    openaiType: "authentication_error",
    publicMessage: "The API key is invalid or revoked.",
  },
  permission_denied: {
    grpc: GRPC.PERMISSION_DENIED,
    http: 403,
    openaiType: "permission_error",
    publicMessage: "This caller may not perform this operation.",
  },
  not_found: {
    grpc: GRPC.NOT_FOUND,
    http: 404,
    openaiType: "invalid_request_error",
    publicMessage: "Not found.",
  },
  model_not_found: {
    grpc: GRPC.NOT_FOUND,
    http: 404,
    openaiType: "invalid_request_error",
    publicMessage: "The model does not exist.",
  },
  rate_limited: {
    grpc: GRPC.RESOURCE_EXHAUSTED,
    http: 429,
    openaiType: "rate_limit_error",
    publicMessage: "Rate limit exceeded.",
  },
  insufficient_quota: {
    grpc: GRPC.RESOURCE_EXHAUSTED,
    http: 402,
    openaiType: "insufficient_quota",
    publicMessage: "The API key has not enough credit for this request.",
  },
  no_capacity: {
    grpc: GRPC.UNAVAILABLE,
    http: 503,
    openaiType: "api_error",
    publicMessage: "No miner can serve this model right now.",
  },
  upstream_timeout: {
    grpc: GRPC.DEADLINE_EXCEEDED,
    http: 504,
    openaiType: "api_error",
    publicMessage: "The miner did not answer in time.",
  },
  upstream_error: {
    grpc: GRPC.UNAVAILABLE,
    http: 502,
    openaiType: "api_error",
    publicMessage: "The miner failed to serve the request.",
  },
  cancelled: {
    grpc: GRPC.CANCELLED,
    http: 499,
    openaiType: "api_error",
    publicMessage: "The request was cancelled.",
  },
  unavailable: {
    grpc: GRPC.UNAVAILABLE,
    http: 503,
    openaiType: "api_error",
    publicMessage: "The service is unavailable.",
  },
  protocol_error: {
    grpc: GRPC.INVALID_ARGUMENT,
    http: 400,
    openaiType: "invalid_request_error",
    publicMessage: "Protocol violation.",
  },
  config_invalid: {
    grpc: GRPC.INVALID_ARGUMENT,
    http: 400,
    openaiType: "invalid_request_error",
    publicMessage: "Invalid configuration.",
  },
  internal: {
    grpc: GRPC.INTERNAL,
    http: 500,
    openaiType: "api_error",
    publicMessage: "Internal error.",
  },
});

/** Extra facts an error may carry to its boundary. */
export interface ErrorDetails {
  /** The request field at fault (OpenAI `error.param`). */
  readonly param?: string;
  /** When the caller may retry, in ms (HTTP `retry-after`). */
  readonly retryAfterMs?: number;
  /** The underlying cause, for logs only. */
  readonly cause?: unknown;
  /**
   * An HTTP status other than the code's own, for a model backend's 4xx
   * relayed as it is (a 422 stays a 422); the code still gives the body's
   * `type` and `code`.
   */
  readonly httpStatus?: number;
}

/** The one error type TensorClaw code throws across a boundary. */
export class TensorClawError extends Error {
  readonly code: ErrorCode;
  readonly param: string | undefined;
  readonly retryAfterMs: number | undefined;
  /** The HTTP status this error leaves with, when not the catalogue's (ErrorDetails.httpStatus). */
  readonly httpStatus: number | undefined;

  constructor(code: ErrorCode, message?: string, details: ErrorDetails = {}) {
    super(message ?? ERROR_CATALOGUE[code].publicMessage, { cause: details.cause });
    this.name = "TensorClawError";
    this.code = code;
    this.param = details.param;
    this.retryAfterMs = details.retryAfterMs;
    this.httpStatus = details.httpStatus;
  }

  /** The catalogue row for this error's code. */
  get mapping(): ErrorMapping {
    return ERROR_CATALOGUE[this.code];
  }
}

/** The OpenAI error body shape: `{"error":{"message","type","param","code"}}`. */
export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

/**
 * Turns anything thrown into a TensorClawError. Errors that are not ours
 * become a generic `internal` error; their detail stays in `cause` (for the
 * log) and never reaches the caller.
 */
export function toTensorClawError(err: unknown): TensorClawError {
  if (err instanceof TensorClawError) return err;
  return new TensorClawError("internal", undefined, { cause: err });
}

/** HTTP status and OpenAI-shaped body for any thrown value. */
export function toHttpError(err: unknown): { status: number; body: OpenAIErrorBody; retryAfterMs?: number } {
  const e = toTensorClawError(err);
  const m = e.mapping;
  const body: OpenAIErrorBody = {
    error: { message: e.message, type: m.openaiType, param: e.param ?? null, code: e.code },
  };
  const status = e.httpStatus ?? m.http;
  return e.retryAfterMs === undefined ? { status, body } : { status, body, retryAfterMs: e.retryAfterMs };
}

/** A grpc-js `ServiceError`-compatible object for any thrown value. */
export function toGrpcError(err: unknown): { code: GrpcStatus; details: string; message: string } {
  const e = toTensorClawError(err);
  return { code: e.mapping.grpc, details: e.message, message: e.message };
}
