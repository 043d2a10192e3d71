/**
 * `POST /v1/completions` bodies (OpenAI's legacy Completions schema):
 * validated and turned into the tunnel's CompletionRequest. Token-id
 * prompts are refused (the router counts and credits text). `max_tokens`
 * goes to the miner exactly as sent: absent means the backend's own default
 * (OpenAI's is 16), while the router's credit and hold ceiling per choice is
 * then the model's context length, or the router's default (chat's rule).
 */
import { TensorClawError } from "../../common/errors.js";
import type { CompletionRequest } from "../../gen/tensorclaw/v1/chat.js";
import { hashUser } from "./openai-request.js";

/** Most prompts in one request. */
export const MAX_COMPLETION_PROMPTS = 128;
/** Most choices per prompt (`n`). */
export const MAX_COMPLETION_N = 8;
/** Most alternatives per token for legacy `logprobs` (OpenAI's own ceiling). */
export const MAX_COMPLETION_LOGPROBS = 5;
const MAX_STOP = 4;
const UINT32_MAX = 4_294_967_295;

/** A validated completions request. */
export interface ParsedCompletionRequest {
  readonly model: string;
  readonly completion: CompletionRequest;
  readonly stream: boolean;
  /** `stream_options.include_usage`. */
  readonly includeUsage: boolean;
  /** Choices asked for: prompts × n. */
  readonly choices: number;
  /** UTF-8 bytes of every prompt and the suffix (per prompt), for the usage bounds. */
  readonly promptBytes: number;
}

function bad(param: string, message: string): never {
  throw new TensorClawError("invalid_request", message, { param });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function given(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** An optional number within [lo, hi] (integer when asked). */
function optNumber(body: Record<string, unknown>, key: string, lo: number, hi: number, int = false) {
  const v = body[key];
  if (!given(v)) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v))) {
    bad(key, `\`${key}\` must be ${int ? "an integer" : "a number"} from ${lo} to ${hi}.`);
  }
  return v;
}

function promptsOf(prompt: unknown): string[] {
  if (typeof prompt === "string") return [prompt];
  if (!Array.isArray(prompt) || prompt.length === 0) {
    bad("prompt", "`prompt` must be a string or a non-empty array of strings.");
  }
  if (prompt.length > MAX_COMPLETION_PROMPTS) {
    bad("prompt", `\`prompt\` may hold at most ${MAX_COMPLETION_PROMPTS} strings.`);
  }
  if (prompt.some((p) => typeof p === "number" || Array.isArray(p))) {
    bad("prompt", "`prompt` must be text: token-id arrays are not supported by this router.");
  }
  if (!prompt.every((p) => typeof p === "string"))
    bad("prompt", "`prompt` must be a string or an array of strings.");
  return prompt as string[];
}

function stopOf(stop: unknown): string[] {
  if (!given(stop)) return [];
  const list = typeof stop === "string" ? [stop] : stop;
  if (
    !Array.isArray(list) ||
    list.length > MAX_STOP ||
    !list.every((s) => typeof s === "string" && s !== "")
  ) {
    bad("stop", `\`stop\` must be a non-empty string or up to ${MAX_STOP} of them.`);
  }
  return list as string[];
}

/** Validates a completions body (parsed JSON). Throws `invalid_request` naming the field at fault. */
export function parseCompletionBody(
  body: unknown,
  opts: { readonly userSalt: string; readonly account: string },
): ParsedCompletionRequest {
  if (!isObject(body)) bad("body", "The request body must be a JSON object.");
  if (typeof body.model !== "string" || body.model === "")
    bad("model", "`model` must be a non-empty string.");
  const prompt = promptsOf(body.prompt);
  if (given(body.suffix) && typeof body.suffix !== "string") bad("suffix", "`suffix` must be a string.");
  const suffix = typeof body.suffix === "string" ? body.suffix : "";
  const n = optNumber(body, "n", 1, MAX_COMPLETION_N, true);
  const bestOf = optNumber(body, "best_of", 1, UINT32_MAX, true);
  // best_of > n needs the server to sample and rank unseen choices: not something a miner's word can be trusted on.
  if (bestOf !== undefined && bestOf !== (n ?? 1))
    bad("best_of", "`best_of` is supported only equal to `n`.");
  if (given(body.echo) && typeof body.echo !== "boolean") bad("echo", "`echo` must be a boolean.");
  if (given(body.stream) && typeof body.stream !== "boolean") bad("stream", "`stream` must be a boolean.");
  const stream = body.stream === true;
  let includeUsage = false;
  if (given(body.stream_options)) {
    const so = body.stream_options;
    if (!isObject(so)) bad("stream_options", "`stream_options` must be an object.");
    if (!stream) bad("stream_options", "`stream_options` is only allowed when `stream` is true.");
    includeUsage = so.include_usage === true;
  }
  if (given(body.user) && typeof body.user !== "string") bad("user", "`user` must be a string.");
  const user =
    typeof body.user === "string" && body.user !== "" ? hashUser(body.user, opts.account, opts.userSalt) : "";
  const seed = optNumber(body, "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true);
  const completion: CompletionRequest = {
    prompt,
    suffix,
    maxTokens: optNumber(body, "max_tokens", 0, UINT32_MAX, true),
    temperature: optNumber(body, "temperature", 0, 2),
    topP: optNumber(body, "top_p", 0, 1),
    n,
    logprobs: optNumber(body, "logprobs", 0, MAX_COMPLETION_LOGPROBS, true),
    echo: body.echo === true,
    stop: stopOf(body.stop),
    seed: seed === undefined ? undefined : BigInt(seed),
    frequencyPenalty: optNumber(body, "frequency_penalty", -2, 2),
    presencePenalty: optNumber(body, "presence_penalty", -2, 2),
    user,
    extraJson: "",
    stream,
  };
  let promptBytes = 0;
  for (const p of prompt) promptBytes += Buffer.byteLength(p, "utf8") + Buffer.byteLength(suffix, "utf8");
  return {
    model: body.model,
    completion,
    stream,
    includeUsage,
    choices: prompt.length * (n ?? 1),
    promptBytes,
  };
}
