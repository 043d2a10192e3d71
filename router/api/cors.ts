import type { IncomingMessage, ServerResponse } from "node:http";
import { RATE_LIMIT_HEADER_NAMES } from "./rate-limit-headers.js";

/**
 * Which web origins may call the API from a browser (`--cors-origins`).
 * Off by default: a router answers browsers only for the origins its
 * operator names, or for any origin with `*`. `--no-auth` refuses `*` at
 * start-up: without keys, an open router could be driven by any page its
 * operator's browser visits.
 */
export type CorsOrigins = readonly string[] | "*";

/** Response headers a browser app may read. */
const EXPOSED_HEADERS = ["x-request-id", "retry-after", "retry-after-ms", ...RATE_LIMIT_HEADER_NAMES].join(
  ", ",
);
/** Headers a preflight allows when it names none: what clients of an OpenAI-style API send. */
const DEFAULT_ALLOWED_HEADERS = "authorization, content-type, x-request-id, openai-organization";
/** Longest `access-control-request-headers` echoed back. */
const MAX_REQUESTED_HEADERS_CHARS = 2048;
/** An HTTP header name (RFC 9110 token), lower case as browsers send it. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;

/**
 * What a CORS preflight allows: every header it asks for, when the list is
 * made of well-formed header names, so a browser app can send whatever its
 * SDK adds (the `openai` SDK's `x-stainless-*`, OpenRouter's `http-referer`
 * and `x-title`); the API authenticates by its bearer key, never by cookie,
 * so no header grants anything by itself. Anything malformed or overlong
 * gets the default list.
 */
export function allowedHeaders(requested: string | undefined): string {
  if (requested === undefined || requested.length > MAX_REQUESTED_HEADERS_CHARS)
    return DEFAULT_ALLOWED_HEADERS;
  const names = requested
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== "");
  if (names.length === 0 || !names.every((h) => HEADER_NAME.test(h))) return DEFAULT_ALLOWED_HEADERS;
  return names.join(", ");
}

/** Whether `origin` (the request's `Origin` header) may read responses. */
export function originAllowed(origins: CorsOrigins | undefined, origin: string | undefined): boolean {
  if (origins === undefined || origin === undefined) return false;
  return origins === "*" || origins.includes(origin);
}

/**
 * Sets the CORS headers of a response to a browser whose origin is allowed
 * (nothing otherwise, so the browser keeps the answer from the page).
 * Returns whether the origin is allowed.
 */
export function applyCors(
  req: IncomingMessage,
  res: ServerResponse,
  origins: CorsOrigins | undefined,
): boolean {
  // Caches must not serve one origin's answer to another.
  if (origins !== undefined && origins !== "*") res.setHeader("vary", "origin");
  const origin = req.headers.origin;
  if (!originAllowed(origins, origin)) return false;
  res.setHeader("access-control-allow-origin", origins === "*" ? "*" : (origin as string));
  res.setHeader("access-control-expose-headers", EXPOSED_HEADERS);
  return true;
}

/** Answers a preflight (OPTIONS): 204, with the allowances only for an allowed origin. */
export function answerPreflight(
  req: IncomingMessage,
  res: ServerResponse,
  origins: CorsOrigins | undefined,
  requestId: string,
): number {
  const headers: Record<string, string> = { "x-request-id": requestId };
  if (originAllowed(origins, req.headers.origin)) {
    headers["access-control-allow-methods"] = "GET, POST, OPTIONS";
    headers["access-control-allow-headers"] = allowedHeaders(req.headers["access-control-request-headers"]);
    headers["access-control-max-age"] = "86400";
  }
  res.writeHead(204, headers);
  res.end();
  return 204;
}

/** Parses `--cors-origins`: `*`, or a comma-separated list of origins (scheme://host[:port]). */
export function parseCorsOrigins(value: string): CorsOrigins | { readonly error: string } {
  const trimmed = value.trim();
  if (trimmed === "*") return "*";
  const out: string[] = [];
  for (const raw of trimmed.split(",")) {
    const o = raw.trim();
    if (o === "") continue;
    let u: URL;
    try {
      u = new URL(o);
    } catch {
      return { error: `${JSON.stringify(o)} is not an origin (scheme://host[:port])` };
    }
    if ((u.protocol !== "http:" && u.protocol !== "https:") || u.origin !== o) {
      return {
        error: `${JSON.stringify(o)} is not an origin (scheme://host[:port], no path or trailing slash)`,
      };
    }
    out.push(o);
  }
  return out.length === 0 ? { error: "no origin given" } : out;
}
