import type { Server as HttpServer, IncomingMessage, ServerResponse } from "node:http";
import { TensorClawError, toHttpError } from "../../common/errors.js";

/** Largest request body the Business API reads, unless configured (`--max-body-bytes`). */
export const DEFAULT_MAX_BODY_BYTES = 4 * 1024 * 1024;
/** Idle keep-alive of HTTP connections: above the 60 s of common load balancers, so they close first. */
export const HTTP_KEEP_ALIVE_TIMEOUT_MS = 65_000;
/** A client must send its request headers within this. */
export const HTTP_HEADERS_TIMEOUT_MS = 10_000;
/** A client must send its whole request (headers and body) within this. */
export const HTTP_REQUEST_TIMEOUT_MS = 30_000;

/**
 * Bounds slow clients on an HTTP(S) server: idle keep-alive, headers within
 * 10 s, a whole request within 30 s.
 */
export function boundSlowClients(server: HttpServer): void {
  server.keepAliveTimeout = HTTP_KEEP_ALIVE_TIMEOUT_MS;
  server.headersTimeout = HTTP_HEADERS_TIMEOUT_MS;
  server.requestTimeout = HTTP_REQUEST_TIMEOUT_MS;
}

/** Headers every API response carries (CORS headers, when allowed, are set per request: cors.ts). */
export function baseHeaders(requestId: string): Record<string, string> {
  return { "x-request-id": requestId };
}

/** Writes a JSON response in one go. */
export function sendJson(res: ServerResponse, status: number, body: unknown, requestId: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...baseHeaders(requestId),
  });
  res.end(text);
}

/**
 * Writes any thrown value as an HTTP error with an OpenAI error body (the
 * catalogue decides the status), plus `retry-after` / `retry-after-ms` when
 * the error carries a retry time. Returns the status written.
 */
export function sendError(res: ServerResponse, err: unknown, requestId: string): number {
  const { status, body, retryAfterMs } = toHttpError(err);
  const headers: Record<string, string | number> = {
    "content-type": "application/json",
    ...baseHeaders(requestId),
  };
  if (retryAfterMs !== undefined) {
    headers["retry-after"] = Math.max(1, Math.ceil(retryAfterMs / 1000));
    headers["retry-after-ms"] = Math.max(0, Math.ceil(retryAfterMs));
  }
  const text = JSON.stringify(body);
  headers["content-length"] = Buffer.byteLength(text);
  if (res.headersSent) {
    res.destroy();
    return status;
  }
  res.writeHead(status, headers);
  res.end(text);
  return status;
}

/** JSON text of an error for an SSE `data:` line: `{"error":{...}}`, the shape OpenAI clients raise. */
export function errorEventJson(err: unknown): string {
  return JSON.stringify(toHttpError(err).body);
}

/**
 * Reads a request body up to `limit` bytes. A declared or actual size over
 * the limit fails with `payload_too_large` without buffering the rest.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | undefined) => {
      if (done) return;
      done = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("aborted", onAborted);
      if (err !== undefined) reject(err);
      else resolve(parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts, size));
    };
    const onData = (b: Buffer) => {
      size += b.length;
      if (size > limit) {
        req.pause();
        finish(tooLarge(limit));
        return;
      }
      parts.push(b);
    };
    const onEnd = () => finish(undefined);
    const onError = (e: Error) => finish(new TensorClawError("cancelled", "client went away", { cause: e }));
    const onAborted = () => finish(new TensorClawError("cancelled", "client went away"));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("aborted", onAborted);
  });
}

function tooLarge(limit: number): TensorClawError {
  return new TensorClawError("payload_too_large", `The request body exceeds ${limit} bytes.`);
}

/**
 * Deepest nesting of arrays and objects a request body may have. OpenAI
 * bodies nest a handful of levels (a JSON Schema in `tools` a few dozen);
 * a body of a million `[` would otherwise cost the event loop most of a
 * second in the parser and in every walk over the result.
 */
export const MAX_JSON_DEPTH = 128;

/**
 * Whether a JSON text nests arrays and objects deeper than `max`, found in
 * one pass over the bytes before any parsing (UTF-8 continuation bytes
 * never equal the ASCII brackets, quote or backslash, so bytes will do).
 * Malformed text is left for JSON.parse to reject.
 */
export function nestsDeeperThan(body: Buffer, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as number;
    if (c === 0x22) {
      i = stringEnd(body, i);
      if (i === -1) return false;
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) {
      depth--;
    }
  }
  return false;
}

/**
 * The index of the quote closing the string opened at `open`, or -1 when it
 * never closes. Jumps from quote to quote with the native indexOf (strings
 * are most of a large body), skipping quotes escaped by an odd run of
 * backslashes.
 */
function stringEnd(body: Buffer, open: number): number {
  let at = open;
  for (;;) {
    at = body.indexOf(0x22, at + 1);
    if (at === -1) return -1;
    let slashes = 0;
    while (body[at - 1 - slashes] === 0x5c) slashes++;
    if (slashes % 2 === 0) return at;
  }
}

/** Parses JSON, failing with `invalid_json` (also when it nests deeper than MAX_JSON_DEPTH). */
export function parseJson(body: Buffer): unknown {
  if (nestsDeeperThan(body, MAX_JSON_DEPTH)) {
    throw new TensorClawError(
      "invalid_json",
      `The request body nests arrays or objects deeper than ${MAX_JSON_DEPTH} levels.`,
    );
  }
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new TensorClawError("invalid_json", "The request body is not valid JSON.", { cause: err });
  }
}
