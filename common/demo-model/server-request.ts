/**
 * Parsing the bodies the demo model server accepts into checked requests.
 * Pure: a body that does not fit throws a TensorClawError (`invalid_request`
 * naming the field, or `model_not_found`), which the server turns into an
 * OpenAI error body. Fields the demo model does not model (`top_p`,
 * penalties, `stop`, `user`, …) are accepted and ignored, the way vLLM
 * ignores fields it does not know; the miner's demo backend ignores the same
 * ones, so both write the same answer.
 */
import { TensorClawError } from "../errors.js";
import { textOfParts } from "../tokens/prompt.js";
import type { ChatTurn } from "./chat-template.js";
import { DEMO_EMBEDDING_MODEL_ID, demoDimensionsProblem } from "./embedding.js";
import { DEMO_MODEL_ID, MAX_TOP_LOGPROBS } from "./model.js";

/** Sampling settings shared by both completion endpoints. */
export interface Sampling {
  /** 0 … 2; default 1. */
  readonly temperature: number;
  readonly seed: number | undefined;
  /** Undefined: as many as the context allows (up to the server's default). */
  readonly maxTokens: number | undefined;
}

/** A checked `POST /v1/chat/completions` body. */
export interface ChatBody extends Sampling {
  readonly messages: readonly ChatTurn[];
  readonly stream: boolean;
  readonly includeUsage: boolean;
  readonly logprobs: boolean;
  readonly topLogprobs: number;
}

/** A checked `POST /v1/completions` body. */
export interface CompletionBody extends Sampling {
  /** The prompt as text, or as token ids. */
  readonly prompt: string | readonly number[];
  readonly echo: boolean;
  /** Alternatives per token in the legacy `logprobs` object; undefined: no logprobs. */
  readonly logprobs: number | undefined;
}

/** A checked `POST /v1/embeddings` body for the demo embedding model. */
export interface EmbeddingsBody {
  readonly input: readonly string[];
  readonly dimensions: number | undefined;
}

/** Most inputs of one embeddings request (OpenAI's limit). */
export const MAX_EMBEDDING_INPUTS = 2048;

/** A checked `POST /tokenize` body (vLLM's shape). */
export type TokenizeBody =
  | { readonly kind: "prompt"; readonly prompt: string; readonly returnTokenStrs: boolean }
  | {
      readonly kind: "messages";
      readonly messages: readonly ChatTurn[];
      readonly addGenerationPrompt: boolean;
      readonly returnTokenStrs: boolean;
    };

type Json = Record<string, unknown>;

function bad(param: string, why: string): never {
  throw new TensorClawError("invalid_request", `${param}: ${why}`, { param });
}

function asObject(body: unknown): Json {
  if (typeof body !== "object" || body === null || Array.isArray(body)) bad("body", "must be a JSON object");
  return body as Json;
}

function optional<T>(b: Json, key: string, check: (v: unknown) => v is T, what: string): T | undefined {
  const v = b[key];
  if (v === undefined || v === null) return undefined;
  if (!check(v)) bad(key, `must be ${what}`);
  return v;
}

const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isString = (v: unknown): v is string => typeof v === "string";
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const isNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

function intIn(b: Json, key: string, min: number, max: number): number | undefined {
  const v = optional(b, key, isInt, "an integer");
  if (v !== undefined && (v < min || v > max)) bad(key, `must be from ${min} to ${max}`);
  return v;
}

/** Checks `model` (optional where vLLM has it optional): models other than `served` are a 404. */
function checkModel(b: Json, required: boolean, served = DEMO_MODEL_ID): void {
  const model = optional(b, "model", isString, "a string");
  if (model === undefined) {
    if (required) bad("model", "is required");
    return;
  }
  if (model !== served) {
    throw new TensorClawError("model_not_found", `The model ${JSON.stringify(model)} does not exist.`, {
      param: "model",
    });
  }
}

function sampling(b: Json): Sampling {
  const temperature = optional(b, "temperature", isNumber, "a number") ?? 1;
  if (temperature < 0 || temperature > 2) bad("temperature", "must be from 0 to 2");
  if (b.n !== undefined && b.n !== null && b.n !== 1) bad("n", "only 1 choice per request is supported");
  const maxTokens = intIn(b, "max_completion_tokens", 0, 1_000_000) ?? intIn(b, "max_tokens", 0, 1_000_000);
  return { temperature, seed: optional(b, "seed", isInt, "an integer"), maxTokens };
}

function messages(b: Json): ChatTurn[] {
  const list = b.messages;
  if (!Array.isArray(list) || list.length === 0) bad("messages", "must be a non-empty array");
  return list.map((m: unknown, i) => {
    const param = `messages[${i}]`;
    if (typeof m !== "object" || m === null) bad(param, "must be an object");
    const { role, content } = m as Json;
    if (typeof role !== "string" || role === "") bad(`${param}.role`, "must be a non-empty string");
    if (content === undefined || content === null || typeof content === "string") {
      return { role, content: content ?? "" };
    }
    if (Array.isArray(content)) return { role, content: textOfParts(JSON.stringify(content)) };
    return bad(`${param}.content`, "must be a string or an array of content parts");
  });
}

/** Checks a chat completions body. */
export function parseChatBody(body: unknown): ChatBody {
  const b = asObject(body);
  checkModel(b, true);
  const streamOptions = b.stream_options;
  const includeUsage =
    typeof streamOptions === "object" &&
    streamOptions !== null &&
    (streamOptions as Json).include_usage === true;
  const logprobs = optional(b, "logprobs", isBool, "a boolean") ?? false;
  const topLogprobs = intIn(b, "top_logprobs", 0, MAX_TOP_LOGPROBS);
  if (topLogprobs !== undefined && !logprobs) bad("top_logprobs", "needs logprobs: true");
  return {
    messages: messages(b),
    stream: optional(b, "stream", isBool, "a boolean") ?? false,
    includeUsage,
    logprobs,
    topLogprobs: topLogprobs ?? 0,
    ...sampling(b),
  };
}

/** The prompt of a completions body: a string, token ids, or a batch of exactly one of either. */
function prompt(b: Json, isToken: (id: number) => boolean): string | number[] {
  let p = b.prompt;
  if (Array.isArray(p) && p.length === 1 && (typeof p[0] === "string" || Array.isArray(p[0]))) p = p[0];
  if (typeof p === "string") {
    if (p === "") bad("prompt", "must not be empty");
    return p;
  }
  if (!Array.isArray(p) || p.length === 0) bad("prompt", "must be a non-empty string or array of token ids");
  for (const id of p) {
    if (!isInt(id))
      bad("prompt", "must be a string or an array of integer token ids (one prompt per request)");
    if (!isToken(id)) bad("prompt", `token id ${id} is outside the vocabulary`);
  }
  return p as number[];
}

/** Checks a completions body; `isToken` says which ids the vocabulary has. */
export function parseCompletionBody(body: unknown, isToken: (id: number) => boolean): CompletionBody {
  const b = asObject(body);
  checkModel(b, true);
  if (b.stream === true) bad("stream", "streaming is not supported on /v1/completions by the demo server");
  const s = sampling(b);
  return {
    prompt: prompt(b, isToken),
    echo: optional(b, "echo", isBool, "a boolean") ?? false,
    ...s,
    maxTokens: s.maxTokens ?? 16, // the legacy endpoint's default
    logprobs: intIn(b, "logprobs", 0, MAX_TOP_LOGPROBS),
  };
}

/** Checks a tokenize body. */
export function parseTokenizeBody(body: unknown): TokenizeBody {
  const b = asObject(body);
  checkModel(b, false);
  const returnTokenStrs = optional(b, "return_token_strs", isBool, "a boolean") ?? false;
  if (b.messages !== undefined) {
    return {
      kind: "messages",
      messages: messages(b),
      addGenerationPrompt: optional(b, "add_generation_prompt", isBool, "a boolean") ?? true,
      returnTokenStrs,
    };
  }
  const p = b.prompt;
  if (typeof p !== "string") bad("prompt", "must be a string (or give messages)");
  // `add_special_tokens` is accepted: the demo model adds no special tokens either way.
  optional(b, "add_special_tokens", isBool, "a boolean");
  return { kind: "prompt", prompt: p, returnTokenStrs };
}

/**
 * Checks a `POST /v1/embeddings` body: `model` the demo embedding model,
 * `input` a text or 1 to {@link MAX_EMBEDDING_INPUTS} texts, `dimensions`
 * within the model's, `encoding_format` "float" when given.
 */
export function parseEmbeddingsBody(body: unknown): EmbeddingsBody {
  const b = asObject(body);
  checkModel(b, true, DEMO_EMBEDDING_MODEL_ID);
  const raw = b.input;
  const input = typeof raw === "string" ? [raw] : raw;
  if (!Array.isArray(input) || input.length === 0 || !input.every(isString)) {
    bad("input", "must be a string or a non-empty array of strings");
  }
  if (input.length > MAX_EMBEDDING_INPUTS) bad("input", `must have at most ${MAX_EMBEDDING_INPUTS} texts`);
  const format = optional(b, "encoding_format", isString, "a string");
  if (format !== undefined && format !== "float") bad("encoding_format", 'only "float" is served');
  const dimensions = optional(b, "dimensions", isInt, "an integer");
  const problem = dimensions === undefined ? undefined : demoDimensionsProblem(dimensions);
  if (problem !== undefined) bad("dimensions", problem);
  return { input, dimensions };
}
