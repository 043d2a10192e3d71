/**
 * Transport helpers of the demo model server: bounded body reading, JSON and
 * OpenAI error responses, and server-sent events.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { TensorClawError, toHttpError } from "../errors.js";

/** Largest request body the server reads. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

function tooLarge(limit: number): TensorClawError {
  return new TensorClawError("payload_too_large", `The request body exceeds ${limit} bytes.`);
}

/**
 * Reads a JSON body of at most `limit` bytes. A declared or actual size over
 * the limit fails with `payload_too_large` without buffering the rest; text
 * that is not JSON fails with `invalid_json`.
 */
export function readJson(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = Number(req.headers["content-length"] ?? Number.NaN);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (err: Error | undefined) => {
      if (settled) return;
      settled = true;
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      if (err !== undefined) return reject(err);
      try {
        resolve(JSON.parse(Buffer.concat(parts, size).toString("utf8")));
      } catch (cause) {
        reject(new TensorClawError("invalid_json", undefined, { cause }));
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        settle(tooLarge(limit));
      } else {
        parts.push(chunk);
      }
    };
    const onEnd = () => settle(undefined);
    const onError = (cause: Error) => settle(new TensorClawError("cancelled", "client went away", { cause }));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
  });
}

/** Writes a JSON response in one go. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Writes any thrown value as an OpenAI error body with the catalogue's
 * status. Errors that are not ours become a generic internal error. A body
 * left unread (too large) closes the connection rather than being drained.
 */
export function sendError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const { status, body } = toHttpError(err);
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...(status === 413 ? { connection: "close" } : {}),
  });
  res.end(text);
}

/** Starts a server-sent-events response. */
export function startEvents(res: ServerResponse): void {
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    connection: "keep-alive",
  });
}

/** Writes one `data:` event. */
export function sendEvent(res: ServerResponse, data: unknown): void {
  res.write(`data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`);
}
