/**
 * OpenRouter's app attribution headers: `HTTP-Referer` (the app's site) and
 * `X-Title` (its name). TensorClaw records them on the request's generation
 * record and access log line, so a key holder can see which of their apps
 * spent what. They are the caller's free text: bounded, stripped of control
 * characters, and a referer keeps only its origin and path (a query string
 * can hold a token).
 */
import type { IncomingHttpHeaders } from "node:http";
import type { RequestApp } from "../billing/billing.js";

/** Longest referer kept (characters). */
export const MAX_APP_REFERER = 256;
/** Longest title kept (characters). */
export const MAX_APP_TITLE = 128;

// Control characters (tabs included: settle.lua's arguments are tab-separated) and bidi overrides.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point.
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

function header(v: string | string[] | undefined): string {
  return (Array.isArray(v) ? (v[0] ?? "") : (v ?? "")).slice(0, 4 * MAX_APP_REFERER);
}

/** `text` without unsafe characters or surrounding space, cut to `max`, or undefined when empty. */
export function cleanAppText(text: string, max: number): string | undefined {
  const t = text.replace(UNSAFE, " ").replace(/\s+/g, " ").trim().slice(0, max).trim();
  return t === "" ? undefined : t;
}

/** A referer as origin + path when it parses as an http(s) URL (no credentials, query or fragment). */
function refererText(raw: string): string | undefined {
  const text = cleanAppText(raw, 4 * MAX_APP_REFERER);
  if (text === undefined) return undefined;
  try {
    const u = new URL(text);
    if (u.protocol === "http:" || u.protocol === "https:") {
      return cleanAppText(`${u.origin}${u.pathname === "/" ? "" : u.pathname}`, MAX_APP_REFERER);
    }
  } catch {
    // Not a URL: an app may name itself however it likes.
  }
  return cleanAppText(text.replace(/[?#].*$/, ""), MAX_APP_REFERER);
}

/** The app a request names, or undefined when it names none. */
export function appFromHeaders(headers: IncomingHttpHeaders): RequestApp | undefined {
  const referer = refererText(header(headers["http-referer"]));
  const title = cleanAppText(header(headers["x-title"]), MAX_APP_TITLE);
  if (referer === undefined && title === undefined) return undefined;
  return { ...(referer === undefined ? {} : { referer }), ...(title === undefined ? {} : { title }) };
}
