import { TensorClawError } from "../../common/errors.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";

/** How one attempt on one miner ended. */
export type Attempt =
  | { kind: "done" }
  | { kind: "retry"; error: TensorClawError }
  | { kind: "failed"; error: TensorClawError };

/**
 * What a miner's per-request error means for the user: the error they see
 * (through the catalogue: 503, 504, 400 or 502) and whether another miner
 * may be tried (only ever before any output reached the user). The miner's
 * text is shown, cut to 300 characters (tunnel.proto: it must hold no secrets).
 */
export function upstreamError(
  code: RequestErrorCode,
  message: string,
  retryAfterMs: number,
): { error: TensorClawError; retry: boolean } {
  const detail = message.slice(0, 300);
  switch (code) {
    case RequestErrorCode.REQUEST_ERROR_CODE_OVERLOADED:
    case RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE:
      // Busy or gone, not broken: if no other miner takes it, the user should retry later (503).
      return {
        error: new TensorClawError("no_capacity", undefined, { retryAfterMs, cause: detail }),
        retry: true,
      };
    case RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT:
      return { error: new TensorClawError("upstream_timeout", undefined, { cause: detail }), retry: true };
    case RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST:
      return {
        error: new TensorClawError("invalid_request", `The model backend refused the request: ${detail}`),
        retry: false,
      };
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
