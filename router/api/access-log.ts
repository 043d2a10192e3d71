import type { Logger } from "../../common/logger.js";
import type { RequestApp } from "../usage/event.js";

/**
 * What the access log says of one request beyond its method, path and
 * status, filled in as the request goes (the chat endpoint adds the model,
 * the miner that served it, its credited tokens and its time to first
 * token). Never any prompt or answer text.
 */
export interface AccessRecord {
  keyId?: string;
  model?: string;
  /** Hotkey of the miner whose answer reached the user (the last one tried). */
  miner?: string;
  promptTokens?: number;
  completionTokens?: number;
  ttftMs?: number | null;
  /** The app the request named (`HTTP-Referer`, `X-Title`; cleaned and bounded). */
  app?: RequestApp;
}

/** Paths polled by probes and scrapers: logged at debug, so they do not drown the requests. */
const QUIET_PATHS = new Set(["/healthz", "/readyz", "/metrics"]);

/**
 * Writes the access log line of one request: at info for the API, at debug
 * for health, readiness and metrics. `requestId` is the `x-request-id` the
 * client got and the miner logs, so the three can be joined.
 */
export function logAccess(
  log: Logger,
  requestId: string,
  method: string,
  path: string,
  status: number,
  durationMs: number,
  a: AccessRecord,
): void {
  const line = {
    requestId,
    method,
    path,
    status,
    keyId: a.keyId,
    model: a.model,
    miner: a.miner,
    promptTokens: a.promptTokens,
    completionTokens: a.completionTokens,
    ttftMs: a.ttftMs,
    app: a.app,
    durationMs: Math.round(durationMs * 10) / 10,
  };
  if (QUIET_PATHS.has(path)) log.debug(line, "request");
  else log.info(line, "request");
}
