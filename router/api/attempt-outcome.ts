import type { ErrorCode } from "../../common/errors.js";
import type { RoutingOutcome } from "../routing/outcome-window.js";
import type { Attempt } from "./upstream.js";

/** The codes of a backend refusing the request itself (upstream.ts: its relayed 4xx). */
const REFUSED: ReadonlySet<ErrorCode> = new Set([
  "invalid_request",
  "context_length_exceeded",
  "payload_too_large",
]);

/** Whether an error is a backend refusing the request itself (the user's fault, if it is honest). */
export function isRefusal(code: ErrorCode): boolean {
  return REFUSED.has(code);
}

/**
 * How one attempt on one hotkey ended, for the RoutingBook. `retry` means no
 * output reached the user (another hotkey is tried); `failed` after output
 * means the answer was cut. Timeouts are deadline cuts, the user going away
 * is neutral, and a request the backend refused as invalid is the user's
 * as far as the router can tell. `undefined`: the relay itself threw (the
 * router's side failed, not the miner), counted as neutral.
 */
export function attemptOutcome(result: Attempt | undefined, clientGone: boolean): RoutingOutcome {
  if (result === undefined) return "cancelled";
  if (result.kind === "done") return "served";
  if (clientGone || result.error.code === "cancelled") return "cancelled";
  if (result.error.code === "upstream_timeout") return "deadline";
  if (REFUSED.has(result.error.code)) return "refused";
  return result.kind === "retry" ? "failed_before_output" : "failed_after_output";
}
