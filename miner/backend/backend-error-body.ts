/**
 * The backend's own words when it answers an HTTP error: servers that speak
 * the OpenAI API disagree on where they put them, so each usual shape is
 * looked for in turn, and a body that is no JSON at all is taken as text.
 * The result is scrubbed (common/error-scrub.ts) before it may leave the
 * miner: a backend's error can name its URL, its address or even its key.
 */
import { scrubErrorMessage } from "../../common/error-scrub.js";

/** Most bytes of an error answer read: enough for any message, little for a hostile backend. */
export const ERROR_BODY_MAX_BYTES = 16 * 1024;

function text(v: unknown): string | undefined {
  return typeof v === "string" && v.trim() !== "" ? v : undefined;
}

/** FastAPI's validation errors: `{"detail":[{"loc":[...],"msg":"..."}]}`. */
function detailList(v: unknown): string | undefined {
  if (!Array.isArray(v)) return undefined;
  const msgs = v
    .slice(0, 8)
    .map((d) => (typeof d === "object" && d !== null ? text((d as { msg?: unknown }).msg) : text(d)))
    .filter((m): m is string => m !== undefined);
  return msgs.length > 0 ? msgs.join("; ") : undefined;
}

/**
 * The message inside an error body, found in (in order): OpenAI's
 * `{"error":{"message"}}` (vLLM, llama.cpp, LM Studio, cloud APIs), TGI's and
 * Ollama's `{"error":"..."}`, vLLM's older `{"message":...,"object":"error"}`,
 * FastAPI's `{"detail":...}`; else the body itself as text. Unscrubbed.
 */
export function backendErrorText(body: string): string {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch {
    return body;
  }
  if (typeof doc !== "object" || doc === null) return text(doc) ?? body;
  const d = doc as Record<string, unknown>;
  const err = d.error;
  if (typeof err === "object" && err !== null) {
    const m = text((err as { message?: unknown }).message);
    if (m !== undefined) return m;
  }
  return text(err) ?? text(d.message) ?? text(d.detail) ?? detailList(d.detail) ?? body;
}

/**
 * What the user may read about a backend's HTTP error: its own message,
 * scrubbed and cut to 1,000 characters, or a plain statement of the status
 * when it said nothing usable.
 */
export function backendErrorMessage(status: number, body: string): string {
  const said = scrubErrorMessage(backendErrorText(body));
  return said === "" ? `the backend answered HTTP ${status}` : said;
}
