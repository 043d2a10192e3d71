/**
 * The deterministic text of the test OpenAI backend (`openai-backend.ts`):
 * which pieces it answers a prompt with, how it counts prompt tokens, and the
 * `[[backend key=value …]]` directive a prompt may carry. Pure, so tests can
 * compute the exact expected output.
 */

const WORDS = [
  " the",
  " quick",
  " brown",
  " fox",
  " jumps",
  " over",
  " lazy",
  " dog",
  " and",
  " runs",
  " far",
  " away",
  " from",
  " home",
  " to",
  " see",
  " a",
  " new",
  " world",
  " of",
  " light",
  " sound",
  " water",
  " stone",
  " tree",
  " river",
  " sky",
  " cloud",
  " rain",
  " sun",
  " moon",
  " star",
];

/** The concatenated text content of an OpenAI `messages` array (string contents and text parts). */
export function promptTextOf(body: unknown): string {
  const messages = (body as { messages?: unknown })?.messages;
  if (!Array.isArray(messages)) return "";
  const parts: string[] = [];
  for (const m of messages) {
    const content = (m as { content?: unknown })?.content;
    if (typeof content === "string") parts.push(content);
    else if (Array.isArray(content)) {
      for (const p of content) {
        const text = (p as { text?: unknown })?.text;
        if (typeof text === "string") parts.push(text);
      }
    }
  }
  return parts.join("\n");
}

function hash32(text: string): number {
  // FNV-1a: stable across runs, enough to make different prompts differ.
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The exact completion pieces the backend produces for a prompt text. */
/**
 * The text choice `index` of a request with `n` > 1 is answered from:
 * choice 0 answers the prompt itself, every other one a variant of it, so
 * choices differ (`backendTokens(choiceText(p, i), n)` is choice i).
 */
export function choiceText(promptText: string, index: number): string {
  return index === 0 ? promptText : `${promptText}#${index}`;
}

export function backendTokens(promptText: string, count: number): string[] {
  const start = hash32(promptText) % WORDS.length;
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(WORDS[(start + i * 7) % WORDS.length] as string);
  return out;
}

/** Prompt tokens as this backend reports them: whitespace-separated words plus 3 per message. */
export function countPromptTokens(body: unknown): number {
  const messages = (body as { messages?: unknown })?.messages;
  const n = Array.isArray(messages) ? messages.length : 0;
  const words = promptTextOf(body)
    .split(/\s+/)
    .filter((w) => w !== "").length;
  return words + 3 * n;
}

/** The `[[backend key=value …]]` settings found in a prompt text (empty when none). */
export function backendDirective(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const m = /\[\[backend ([^\]]*)\]\]/.exec(text);
  if (m === null) return out;
  for (const kv of (m[1] ?? "").trim().split(/\s+/)) {
    const eq = kv.indexOf("=");
    if (eq > 0) out.set(kv.slice(0, eq), kv.slice(eq + 1));
  }
  return out;
}

/** One alternative as the backend returns it (OpenAI's `top_logprobs[]` item). */
export interface BackendTopLogprob {
  readonly token: string;
  readonly logprob: number;
  readonly bytes: number[];
}

/** One token's logprobs as the backend returns it (OpenAI's `logprobs.content[]` item). */
export interface BackendLogprob extends BackendTopLogprob {
  readonly top_logprobs: BackendTopLogprob[];
}

function item(token: string, logprob: number): BackendTopLogprob {
  return { token, logprob, bytes: Array.from(Buffer.from(token, "utf8")) };
}

/**
 * The logprobs the backend reports for the pieces of `backendTokens(promptText,
 * count)`: piece i has log-probability -(1 + i mod 4) / 8, and `top`
 * alternatives, the piece itself first, then the following words at 0.5 less
 * each. All values are multiples of 1/8, so they survive every float
 * conversion on the way exactly.
 */
export function backendLogprobs(promptText: string, count: number, top: number): BackendLogprob[] {
  const pieces = backendTokens(promptText, count);
  return pieces.map((token, i) => {
    const logprob = -(1 + (i % 4)) / 8;
    const start = WORDS.indexOf(token);
    const alts: BackendTopLogprob[] = [];
    for (let k = 0; k < top; k++) {
      alts.push(item(k === 0 ? token : (WORDS[(start + k) % WORDS.length] as string), logprob - k / 2));
    }
    return { ...item(token, logprob), top_logprobs: alts };
  });
}
