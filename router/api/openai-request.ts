import { createHmac } from "node:crypto";
import { MAX_TOP_LOGPROBS } from "../../common/chunk-logprobs.js";
import { TensorClawError } from "../../common/errors.js";
import type { ChatMessage, ChatRequest, Tool, ToolCall, ToolChoice } from "../../gen/tensorclaw/v1/chat.js";
import type { PromptSize } from "../usage/clamp.js";
import { MAX_CHOICES } from "./chat-ceiling.js";

/** A validated chat completion request, ready for the tunnel. */
export interface ParsedChatRequest {
  readonly model: string;
  readonly stream: boolean;
  /** `stream_options.include_usage`. */
  readonly includeUsage: boolean;
  /**
   * The request as miners receive it: `maxTokens` and `maxCompletionTokens`
   * as the caller sent them (the router's own bound is chat-ceiling.ts).
   */
  readonly chat: ChatRequest;
  /** Size of the prompt, for the usage clamp and the token-limit reservation. */
  readonly prompt: PromptSize;
}

/** Settings of the translation. */
export interface RequestOptions {
  /** Secret mixed into the `user` hash, so miners cannot recover or link ids across routers. */
  readonly userSalt: string;
  /** Who is calling (an API key id): the same `user` of two accounts hashes differently. */
  readonly account: string;
}

const MAX_MESSAGES = 4096;
const MAX_TOOLS = 128;
const MAX_STOP = 4;
const MAX_ID_CHARS = 256;
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const UINT32_MAX = 4_294_967_295;

/** Fields the router understands and maps onto ChatRequest (or handles itself). */
const HANDLED = new Set([
  "model",
  "messages",
  "stream",
  "stream_options",
  "n",
  "temperature",
  "top_p",
  "max_tokens",
  "max_completion_tokens",
  "stop",
  "seed",
  "frequency_penalty",
  "presence_penalty",
  "tools",
  "tool_choice",
  "parallel_tool_calls",
  "response_format",
  "user",
  "logprobs",
  "top_logprobs",
]);

/**
 * Other fields forwarded in `extra_json`, each with a check of its shape.
 * Anything else is dropped: fields such as `metadata`, `store` or
 * `service_tier` could leak account data to miners or ask a backend to keep
 * the conversation.
 */
const FORWARDED: Readonly<Record<string, (v: unknown) => boolean>> = {
  logit_bias: (v) =>
    isObject(v) && Object.values(v).every((x) => typeof x === "number" && Math.abs(x) <= 100),
  reasoning_effort: (v) => typeof v === "string" && v.length <= 32,
  verbosity: (v) => typeof v === "string" && v.length <= 32,
  top_k: (v) => Number.isInteger(v) && (v as number) >= -1 && (v as number) <= 100_000,
  min_p: (v) => typeof v === "number" && v >= 0 && v <= 1,
  repetition_penalty: (v) => typeof v === "number" && v > 0 && v <= 10,
};

/** Fields refused outright, with why, rather than silently changing the answer. */
const REFUSED: Readonly<Record<string, string>> = {
  functions: "`functions` is deprecated and not supported; use `tools`.",
  function_call: "`function_call` is deprecated and not supported; use `tool_choice`.",
  audio: "Audio output is not supported by this API.",
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bad(param: string, message: string): never {
  throw new TensorClawError("invalid_request", message, { param });
}

/**
 * JSON text of a caller-supplied value. JSON.parse accepts nesting that
 * JSON.stringify cannot walk back (it recurses): such input is the caller's
 * fault, a 400, not a 500.
 */
function jsonText(value: unknown, param: string): string {
  try {
    return JSON.stringify(value);
  } catch {
    return bad(param, `\`${param}\` is nested too deeply.`);
  }
}

function optNumber(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max) {
    bad(key, `\`${key}\` must be a number between ${min} and ${max}.`);
  }
  return v;
}

function optInt(body: Record<string, unknown>, key: string, min: number, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    bad(key, `\`${key}\` must be an integer between ${min} and ${max}.`);
  }
  return v;
}

function optBool(body: Record<string, unknown>, key: string, param = key): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") bad(param, `\`${param}\` must be a boolean.`);
  return v;
}

function utf8(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

function parseToolCalls(v: unknown, at: string): ToolCall[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) bad(at, `\`${at}\` must be an array.`);
  return v.map((tc, i): ToolCall => {
    const p = `${at}[${i}]`;
    if (!isObject(tc)) bad(p, `\`${p}\` must be an object.`);
    if (typeof tc.id !== "string" || tc.id === "") bad(`${p}.id`, `\`${p}.id\` must be a non-empty string.`);
    if (tc.type !== undefined && tc.type !== "function")
      bad(`${p}.type`, `\`${p}.type\` must be "function".`);
    const fn = tc.function;
    if (!isObject(fn)) bad(`${p}.function`, `\`${p}.function\` must be an object.`);
    if (typeof fn.name !== "string" || fn.name === "") {
      bad(`${p}.function.name`, `\`${p}.function.name\` must be a non-empty string.`);
    }
    if (typeof fn.arguments !== "string") {
      bad(`${p}.function.arguments`, `\`${p}.function.arguments\` must be a string (JSON text).`);
    }
    return { id: tc.id, type: "function", functionName: fn.name, functionArguments: fn.arguments };
  });
}

function parseMessage(v: unknown, i: number): ChatMessage {
  const p = `messages[${i}]`;
  if (!isObject(v)) bad(p, `\`${p}\` must be an object.`);
  const role = v.role;
  if (typeof role !== "string" || role === "" || role.length > 64) {
    bad(`${p}.role`, `\`${p}.role\` must be a non-empty string.`);
  }
  const msg: ChatMessage = {
    role,
    content: undefined,
    contentPartsJson: "",
    name: "",
    toolCalls: [],
    toolCallId: "",
  };
  const c = v.content;
  if (typeof c === "string") {
    msg.content = c;
  } else if (Array.isArray(c)) {
    c.forEach((part, k) => {
      if (!isObject(part) || typeof part.type !== "string") {
        bad(`${p}.content[${k}]`, `\`${p}.content[${k}]\` must be an object with a string \`type\`.`);
      }
      if (part.type === "text" && typeof part.text !== "string") {
        bad(`${p}.content[${k}].text`, `\`${p}.content[${k}].text\` must be a string.`);
      }
    });
    msg.contentPartsJson = jsonText(c, `${p}.content`);
  } else if (c !== null && c !== undefined) {
    bad(`${p}.content`, `\`${p}.content\` must be a string, an array of content parts, or null.`);
  }
  if (v.name !== undefined && v.name !== null) {
    if (typeof v.name !== "string" || v.name.length > MAX_ID_CHARS) {
      bad(`${p}.name`, `\`${p}.name\` must be a string of at most ${MAX_ID_CHARS} characters.`);
    }
    msg.name = v.name;
  }
  msg.toolCalls = parseToolCalls(v.tool_calls, `${p}.tool_calls`);
  if (msg.toolCalls.length > 0 && role !== "assistant") {
    bad(`${p}.tool_calls`, "Only assistant messages may carry `tool_calls`.");
  }
  if (role === "tool") {
    if (typeof v.tool_call_id !== "string" || v.tool_call_id === "") {
      bad(`${p}.tool_call_id`, `\`${p}.tool_call_id\` is required for role "tool".`);
    }
    msg.toolCallId = v.tool_call_id;
  }
  const hasContent = msg.content !== undefined || msg.contentPartsJson !== "";
  if (!hasContent && !(role === "assistant" && msg.toolCalls.length > 0)) {
    bad(`${p}.content`, `\`${p}.content\` is required.`);
  }
  return msg;
}

function messageBytes(m: ChatMessage): number {
  let n = utf8(m.role) + utf8(m.name) + utf8(m.toolCallId) + utf8(m.content ?? "") + utf8(m.contentPartsJson);
  for (const tc of m.toolCalls) n += utf8(tc.id) + utf8(tc.functionName) + utf8(tc.functionArguments);
  return n;
}

function parseTools(v: unknown): Tool[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) bad("tools", "`tools` must be an array.");
  if (v.length > MAX_TOOLS) bad("tools", `\`tools\` may hold at most ${MAX_TOOLS} tools.`);
  return v.map((t, i): Tool => {
    const p = `tools[${i}]`;
    if (!isObject(t)) bad(p, `\`${p}\` must be an object.`);
    if (t.type !== "function") bad(`${p}.type`, `\`${p}.type\` must be "function".`);
    const fn = t.function;
    if (!isObject(fn)) bad(`${p}.function`, `\`${p}.function\` must be an object.`);
    if (typeof fn.name !== "string" || !FUNCTION_NAME.test(fn.name)) {
      bad(`${p}.function.name`, `\`${p}.function.name\` must match ${FUNCTION_NAME.source}.`);
    }
    if (fn.description !== undefined && typeof fn.description !== "string") {
      bad(`${p}.function.description`, `\`${p}.function.description\` must be a string.`);
    }
    if (fn.parameters !== undefined && !isObject(fn.parameters)) {
      bad(`${p}.function.parameters`, `\`${p}.function.parameters\` must be a JSON Schema object.`);
    }
    if (fn.strict !== undefined && fn.strict !== null && typeof fn.strict !== "boolean") {
      bad(`${p}.function.strict`, `\`${p}.function.strict\` must be a boolean.`);
    }
    return {
      type: "function",
      name: fn.name,
      description: fn.description ?? "",
      parametersJson: fn.parameters === undefined ? "" : jsonText(fn.parameters, `${p}.function.parameters`),
      strict: typeof fn.strict === "boolean" ? fn.strict : undefined,
    };
  });
}

function parseToolChoice(v: unknown, tools: readonly Tool[]): ToolChoice | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === "none" || v === "auto" || v === "required") {
    if (v === "required" && tools.length === 0) bad("tool_choice", '`tool_choice` "required" needs `tools`.');
    return { choice: { $case: "mode", value: v } };
  }
  if (isObject(v) && v.type === "function" && isObject(v.function) && typeof v.function.name === "string") {
    const name = v.function.name;
    if (!tools.some((t) => t.name === name)) {
      bad(
        "tool_choice",
        `\`tool_choice\` names function ${JSON.stringify(name)}, which is not in \`tools\`.`,
      );
    }
    return { choice: { $case: "functionName", value: name } };
  }
  return bad(
    "tool_choice",
    '`tool_choice` must be "none", "auto", "required" or {"type":"function","function":{"name":...}}.',
  );
}

function parseResponseFormat(v: unknown): ChatRequest["responseFormat"] {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) bad("response_format", "`response_format` must be an object.");
  if (v.type === "text" || v.type === "json_object") return { type: v.type, jsonSchemaJson: "" };
  if (v.type === "json_schema") {
    const js = v.json_schema;
    if (!isObject(js) || typeof js.name !== "string" || js.name === "") {
      bad("response_format.json_schema", "`response_format.json_schema` must be an object with a `name`.");
    }
    return { type: "json_schema", jsonSchemaJson: jsonText(js, "response_format.json_schema") };
  }
  return bad(
    "response_format.type",
    '`response_format.type` must be "text", "json_object" or "json_schema".',
  );
}

function parseStop(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return v === "" ? [] : [v];
  if (Array.isArray(v) && v.length <= MAX_STOP && v.every((s) => typeof s === "string" && s !== "")) {
    return v as string[];
  }
  return bad("stop", `\`stop\` must be a string or an array of at most ${MAX_STOP} non-empty strings.`);
}

/**
 * `logprobs` and `top_logprobs`, as given. OpenAI refuses `top_logprobs`
 * without `logprobs: true` (it would silently return nothing), and so does
 * this API.
 */
function parseLogprobs(body: Record<string, unknown>): Pick<ChatRequest, "logprobs" | "topLogprobs"> {
  const logprobs = optBool(body, "logprobs");
  const topLogprobs = optInt(body, "top_logprobs", 0, MAX_TOP_LOGPROBS);
  if (topLogprobs !== undefined && logprobs !== true) {
    bad("top_logprobs", "`top_logprobs` requires `logprobs` to be true.");
  }
  return { logprobs, topLogprobs };
}

/** The salted hash that replaces the caller's `user` value. */
export function hashUser(user: string, account: string, salt: string): string {
  return `u_${createHmac("sha256", salt).update(account).update("\0").update(user).digest("hex").slice(0, 32)}`;
}

/**
 * Validates an OpenAI chat completion body (already parsed JSON) and turns it
 * into the tunnel's ChatRequest. Throws `invalid_request` naming the field at
 * fault (`param`). Pure apart from hashing.
 */
export function parseChatBody(body: unknown, opts: RequestOptions): ParsedChatRequest {
  if (!isObject(body)) bad("body", "The request body must be a JSON object.");
  for (const key of Object.keys(REFUSED)) {
    if (body[key] !== undefined && body[key] !== null && body[key] !== false)
      bad(key, REFUSED[key] as string);
  }
  const model = body.model;
  if (typeof model !== "string" || model === "" || model.length > MAX_ID_CHARS) {
    bad("model", "`model` is required and must be a non-empty string.");
  }
  const rawMessages = body.messages;
  if (!Array.isArray(rawMessages) || rawMessages.length === 0) {
    bad("messages", "`messages` is required and must be a non-empty array.");
  }
  if (rawMessages.length > MAX_MESSAGES)
    bad("messages", `\`messages\` may hold at most ${MAX_MESSAGES} items.`);
  const messages = rawMessages.map(parseMessage);

  const n = optInt(body, "n", 1, MAX_CHOICES);
  const stream = optBool(body, "stream") ?? false;
  let includeUsage = false;
  const so = body.stream_options;
  if (so !== undefined && so !== null) {
    if (!isObject(so)) bad("stream_options", "`stream_options` must be an object.");
    if (!stream) bad("stream_options", "`stream_options` is only allowed when `stream` is true.");
    includeUsage = optBool(so, "include_usage", "stream_options.include_usage") ?? false;
  }

  const seed = optInt(body, "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
  const tools = parseTools(body.tools);
  const toolChoice = parseToolChoice(body.tool_choice, tools);
  if (body.user !== undefined && body.user !== null && typeof body.user !== "string") {
    bad("user", "`user` must be a string.");
  }
  const user = typeof body.user === "string" && body.user !== "" ? body.user : "";
  const { logprobs, topLogprobs } = parseLogprobs(body);

  const extra: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body)) {
    if (HANDLED.has(key) || key in REFUSED || value === null || value === undefined) continue;
    const check = FORWARDED[key];
    if (check === undefined) continue;
    if (!check(value)) bad(key, `\`${key}\` has an invalid value.`);
    extra[key] = value;
  }

  const chat: ChatRequest = {
    messages,
    temperature: optNumber(body, "temperature", 0, 2),
    topP: optNumber(body, "top_p", 0, 1),
    // Both limits as the caller sent them: reasoning models refuse `max_tokens`, others ignore
    // `max_completion_tokens`, so only the caller knows which its model reads.
    maxTokens: optInt(body, "max_tokens", 1, UINT32_MAX),
    maxCompletionTokens: optInt(body, "max_completion_tokens", 1, UINT32_MAX),
    n,
    stop: parseStop(body.stop),
    seed: seed === undefined ? undefined : BigInt(seed),
    frequencyPenalty: optNumber(body, "frequency_penalty", -2, 2),
    presencePenalty: optNumber(body, "presence_penalty", -2, 2),
    tools,
    toolChoice,
    parallelToolCalls: optBool(body, "parallel_tool_calls"),
    responseFormat: parseResponseFormat(body.response_format),
    user: user === "" ? "" : hashUser(user, opts.account, opts.userSalt),
    extraJson: Object.keys(extra).length > 0 ? jsonText(extra, "body") : "",
    stream,
    logprobs,
    topLogprobs,
  };
  let bytes = 0;
  for (const m of messages) bytes += messageBytes(m);
  for (const t of tools) bytes += utf8(t.name) + utf8(t.description) + utf8(t.parametersJson);
  if (chat.responseFormat !== undefined) bytes += utf8(chat.responseFormat.jsonSchemaJson);
  return { model, stream, includeUsage, chat, prompt: { bytes, messages: messages.length } };
}
