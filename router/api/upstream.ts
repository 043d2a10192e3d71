import { scrubErrorMessage } from "../../common/error-scrub.js";
import { type ErrorCode, TensorClawError } from "../../common/errors.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";

/** How one attempt on one miner ended. */
export type Attempt =
  | { kind: "done" }
  | { kind: "retry"; error: TensorClawError }
  | { kind: "failed"; error: TensorClawError };

/** A miner's per-request error, as the tunnel delivers it (every field the miner's claim). */
export interface MinerError {
  readonly code: RequestErrorCode;
  readonly message: string;
  /** RequestError.http_status; 0 or absent when the backend answered no HTTP error. */
  readonly httpStatus?: number | undefined;
}

/**
 * Backend statuses never relayed to the user: they are the miner's problem
 * (its key, its model list, its time, its rate), not the request's
 * (tunnel.proto, RequestError.http_status). 499 is a proxy's "client went
 * away", never the user's doing.
 */
const MINERS_OWN = new Set([401, 403, 404, 408, 429, 499]);

/** How a backend says the prompt is too long, in the usual servers' words. */
const CONTEXT_LENGTH =
  /maximum context length|context length|context window|too many tokens|prompt is too long|exceeds? (?:the )?(?:model'?s? )?(?:max(?:imum)?|context)/i;

/**
 * The user's status for a miner's INVALID_REQUEST: the backend's own 4xx
 * when it is one the user can act on, else 400. Anything outside 400–499
 * (a miner claiming 200, 302, 999 or 0) is 400.
 */
export function relayedStatus(httpStatus: number | undefined): number {
  const s = httpStatus ?? 0;
  return Number.isInteger(s) && s >= 400 && s <= 499 && !MINERS_OWN.has(s) ? s : 400;
}

/** The error code for a relayed 4xx: the body's `code` a client branches on. */
function invalidCode(status: number, message: string): ErrorCode {
  if (status === 413) return "payload_too_large";
  if (status === 400 && CONTEXT_LENGTH.test(message)) return "context_length_exceeded";
  return "invalid_request";
}

/**
 * What a miner's per-request error means for the user: the error they see
 * and whether another miner may be tried (only ever before any output
 * reached the user). The miner's text is scrubbed again here (a miner is
 * not trusted to have done it: keys, URLs, addresses masked; 1,000
 * characters at most). An INVALID_REQUEST is the backend refusing the
 * request itself: the user gets its status (400, 413, 422, ...) and its
 * words, and no other miner is tried. A backend's 5xx stays a 502, with its
 * reason.
 */
export function upstreamError(
  err: MinerError,
  retryAfterMs: number,
): { error: TensorClawError; retry: boolean } {
  const detail = scrubErrorMessage(err.message);
  switch (err.code) {
    case RequestErrorCode.REQUEST_ERROR_CODE_OVERLOADED:
    case RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE:
      // Busy or gone, not broken: if no other miner takes it, the user should retry later (503).
      return {
        error: new TensorClawError("no_capacity", undefined, { retryAfterMs, cause: detail }),
        retry: true,
      };
    case RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT:
      return { error: new TensorClawError("upstream_timeout", undefined, { cause: detail }), retry: true };
    case RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST: {
      const status = relayedStatus(err.httpStatus);
      const message = detail === "" ? `The model backend refused the request (HTTP ${status}).` : detail;
      return {
        error: new TensorClawError(invalidCode(status, detail), message, { httpStatus: status }),
        retry: false,
      };
    }
    default:
      return {
        error: new TensorClawError(
          "upstream_error",
          detail === "" ? undefined : `The miner failed to serve the request: ${detail}`,
        ),
        retry: true,
      };
  }
}
