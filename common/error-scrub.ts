/**
 * Makes an error message from a model backend fit to show a user. The miner
 * scrubs its backend's text before it leaves (its keys and addresses are its
 * own business), and the router scrubs whatever a miner sends again: a
 * hostile or careless miner is not trusted to have done it.
 *
 * Pure and bounded: the input is cut before any pattern runs, and every
 * pattern is linear, so a megabyte of crafted text costs no more than the
 * first few kilobytes of it.
 */

/** Longest message shown (characters). */
export const MAX_ERROR_MESSAGE_CHARS = 1000;
/** Characters looked at, at most: masking only shortens, so this bounds the work. */
const MAX_SCAN_CHARS = 4 * MAX_ERROR_MESSAGE_CHARS;

/** What replaces a secret. */
const SECRET = "[redacted]";
/** What replaces a URL, an IP address or a host with a port. */
const ADDRESS = "[address]";

/**
 * The masks, in order: URLs first (they hold hosts, ports and query keys),
 * then credentials, then bare addresses. Each is a global regexp with no
 * nested quantifiers (no catastrophic backtracking).
 */
const MASKS: readonly (readonly [RegExp, string])[] = [
  // Any scheme://… up to whitespace or a quote: backend URLs, webhook URLs, s3://…
  [/\b[a-z][a-z0-9+.-]{0,15}:\/\/[^\s"'<>`]+/gi, ADDRESS],
  // `Authorization: Bearer …`, `Bearer …`, `Basic …`.
  [/\b(bearer|basic)\s+[^\s"',;]+/gi, `$1 ${SECRET}`],
  // `api_key=…`, `"token": "…"`, `password: …` — the name stays, its value goes.
  [
    /\b(api[_-]?key|access[_-]?key|secret(?:[_-]?key)?|token|password|passwd|authorization|x-api-key)(["']?\s*[=:]\s*["']?)(?!(?:bearer|basic)\s|\[redacted\])[^\s"',;}]+/gi,
    `$1$2${SECRET}`,
  ],
  // Provider key shapes: OpenAI/Anthropic `sk-…`, Hugging Face `hf_…`, GitHub `ghp_…`, Groq `gsk_…`, AWS.
  [/\b(?:sk|pk|rk)-[A-Za-z0-9_-]{6,}/g, SECRET],
  [/\b(?:hf|ghp|gho|ghs|gsk|xox[abp])_[A-Za-z0-9_-]{6,}/g, SECRET],
  [/\b(?:AKIA|ASIA)[A-Z0-9]{12,}/g, SECRET],
  // JSON Web Tokens.
  [/\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*)?/g, SECRET],
  // Long unbroken runs mixing letters and digits (hex or base64 secrets). `-`, `/` and `.` break a
  // run: model ids such as `Qwen/Qwen2-VL-72B-Instruct-GPTQ-Int4` are made of short pieces.
  [/\b(?=[A-Za-z0-9+_]{32,})(?=[A-Za-z0-9+_]*\d)(?=[A-Za-z0-9+_]*[A-Za-z])[A-Za-z0-9+_]+=*/g, SECRET],
  // IPv4, with an optional port.
  [/\b(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?\b/g, ADDRESS],
  // IPv6 in brackets (with an optional port), then bare: full form, or compressed with `::`.
  [/\[[0-9a-f:.]*:[0-9a-f:.]*\](?::\d{1,5})?/gi, ADDRESS],
  [/(?<![\w:])(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}(?![\w:])/gi, ADDRESS],
  [/(?<![\w:])(?:[0-9a-f]{1,4}:){0,6}:(?::?[0-9a-f]{1,4}){0,6}(?![\w:])(?=[^\w]|$)/gi, ADDRESS],
  // A host name with a port: `localhost:8000`, `vllm.internal:8000`, `gpu-box-3:11434`.
  [/\b[a-z0-9](?:[a-z0-9-]{0,62})(?:\.[a-z0-9-]{1,63}){0,8}:\d{2,5}\b/gi, ADDRESS],
  // Names on private networks, even without a port.
  [
    /\b[a-z0-9-]{1,63}(?:\.[a-z0-9-]{1,63}){0,8}\.(?:internal|local|localdomain|lan|intranet|corp|svc|home\.arpa)\b/gi,
    ADDRESS,
  ],
];

/** Control characters, zero-width characters and bidi overrides: they can hide or reorder text. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it removes.
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

/**
 * Cuts `text` to `max` characters without splitting a UTF-16 surrogate pair
 * and marks the cut with an ellipsis.
 */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}

/**
 * The message made safe to show: control and bidi-override characters
 * become spaces, runs of whitespace one space, anything that looks like a
 * secret or an internal address is masked, and the result is at most
 * {@link MAX_ERROR_MESSAGE_CHARS} characters. Not a proof of absence: it
 * keeps honest backends' messages useful while catching the usual leaks.
 */
export function scrubErrorMessage(raw: string, max = MAX_ERROR_MESSAGE_CHARS): string {
  let text = raw.slice(0, MAX_SCAN_CHARS).replace(INVISIBLE, " ");
  for (const [pattern, replacement] of MASKS) text = text.replace(pattern, replacement);
  text = text.replace(/\s+/g, " ").trim();
  return cut(text, max);
}
