import type { RequestShape } from "../gen/tensorclaw/v1/probe.js";

/*
 * The quantised shape of one chat completion request (probe.proto
 * RequestShape), computed the same way on both sides: the router records
 * the shapes of its user traffic with it, and the validator checks that the
 * probe bodies it draws land in the shape it sampled. One function, so the
 * two can never round differently.
 */

/** A request shape without its count: what one request contributes. */
export type ShapeFields = Omit<RequestShape, "count">;

/** Messages counted in a shape (more are recorded as this many). */
export const MAX_SHAPE_MESSAGES = 64;
/** Tools counted in a shape. */
export const MAX_SHAPE_TOOLS = 16;
/**
 * Bytes per prompt token of the size estimate: the router's own estimate
 * (router/usage/clamp.ts ESTIMATE_BYTES_PER_TOKEN), which a test keeps equal.
 */
export const SHAPE_BYTES_PER_TOKEN = 4;

const UINT32_MAX = 4_294_967_295;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `temperature` rounded to 0.1, as a shape holds it. */
export function roundTemperature(t: number): number {
  return Math.round(t * 10) / 10;
}

/** `top_p` rounded to 0.05, as a shape holds it. */
export function roundTopP(p: number): number {
  return Math.round(p * 20) / 20;
}

/** The smallest b >= 0 with `tokens` <= 2^b (integer arithmetic: no float log edge cases). */
export function promptTokensLog2(tokens: number): number {
  let b = 0;
  while (b < 53 && 2 ** b < tokens) b++;
  return b;
}

/** Prompt tokens estimated from the prompt's UTF-8 bytes, as the router estimates them. */
export function promptTokensFromBytes(bytes: number): number {
  return Math.ceil(bytes / SHAPE_BYTES_PER_TOKEN);
}

function utf8(v: unknown): number {
  return typeof v === "string" ? Buffer.byteLength(v, "utf8") : 0;
}

function jsonBytes(v: unknown): number {
  return v === undefined ? 0 : Buffer.byteLength(JSON.stringify(v), "utf8");
}

/**
 * UTF-8 bytes of a chat body's prompt, counted the way the router counts
 * them when it parses a request (router/api/openai-request.ts): each
 * message's role, name, tool_call_id, text (or content parts as JSON) and
 * tool calls, each tool's name, description and parameters, and a JSON
 * schema response format. The validator uses it to aim a probe at a prompt
 * size; a test keeps the two counts equal.
 */
export function promptBytesOf(body: Record<string, unknown>): number {
  let n = 0;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const m of messages) {
    if (!isObject(m)) continue;
    n += utf8(m.role) + utf8(m.name) + utf8(m.tool_call_id);
    if (typeof m.content === "string") n += utf8(m.content);
    else if (Array.isArray(m.content)) n += jsonBytes(m.content);
    if (Array.isArray(m.tool_calls)) {
      for (const tc of m.tool_calls) {
        if (!isObject(tc)) continue;
        const fn = isObject(tc.function) ? tc.function : {};
        n += utf8(tc.id) + utf8(fn.name) + utf8(fn.arguments);
      }
    }
  }
  const tools = Array.isArray(body.tools) ? body.tools : [];
  for (const t of tools) {
    const fn = isObject(t) && isObject(t.function) ? t.function : {};
    n += utf8(fn.name) + utf8(fn.description) + jsonBytes(fn.parameters);
  }
  const rf = body.response_format;
  if (isObject(rf) && rf.type === "json_schema") n += jsonBytes(rf.json_schema);
  return n;
}

/** `max_tokens` as asked: the smaller of `max_tokens` and `max_completion_tokens` (the router's rule), else 0. */
function askedMaxTokens(body: Record<string, unknown>): number {
  const asked = [body.max_tokens, body.max_completion_tokens].filter(
    (v): v is number => typeof v === "number" && Number.isFinite(v) && v > 0,
  );
  return asked.length === 0 ? 0 : Math.min(UINT32_MAX, Math.floor(Math.min(...asked)));
}

function stopCount(v: unknown): number {
  if (typeof v === "string") return v === "" ? 0 : 1;
  return Array.isArray(v) ? v.length : 0;
}

/**
 * The quantised shape of a chat completion body, with values as the caller
 * sent them (before any router default): see probe.proto RequestShape for
 * each field. `model` is the canonical catalogue id the request resolved
 * to; `promptTokens` the router's estimate of the prompt's size. Fields of
 * the wrong type count as not given (the router refuses such bodies before
 * they are recorded anyway).
 */
export function quantiseRequestShape(body: unknown, model: string, promptTokens: number): ShapeFields {
  const b = isObject(body) ? body : {};
  const messages = Array.isArray(b.messages) ? b.messages : [];
  const first = messages[0];
  const firstRole = isObject(first) ? first.role : undefined;
  const rf = b.response_format;
  const t = b.temperature;
  const p = b.top_p;
  return {
    model,
    messages: Math.min(MAX_SHAPE_MESSAGES, messages.length),
    systemPrompt: firstRole === "system" || firstRole === "developer",
    stream: b.stream === true,
    user: typeof b.user === "string" && b.user !== "",
    maxTokens: askedMaxTokens(b),
    temperature: typeof t === "number" && Number.isFinite(t) ? roundTemperature(t) : undefined,
    topP: typeof p === "number" && Number.isFinite(p) ? roundTopP(p) : undefined,
    seed: typeof b.seed === "number",
    stop: stopCount(b.stop),
    tools: Math.min(MAX_SHAPE_TOOLS, Array.isArray(b.tools) ? b.tools.length : 0),
    responseFormat: isObject(rf) && typeof rf.type === "string" ? rf.type : "",
    promptTokensLog2: promptTokensLog2(promptTokens),
    logprobs: b.logprobs === true,
  };
}

/** The RequestShape fields a tail report describes, by proto name (probe.proto FieldValueCount). */
export const SHAPE_FIELDS = [
  "messages",
  "system_prompt",
  "stream",
  "user",
  "max_tokens",
  "temperature",
  "top_p",
  "seed",
  "stop",
  "tools",
  "response_format",
  "prompt_tokens_log2",
  "logprobs",
] as const;

/** One of {@link SHAPE_FIELDS}. */
export type ShapeField = (typeof SHAPE_FIELDS)[number];

/** Each field of a shape with its value as FieldValueCount text. */
export function shapeFieldValues(s: ShapeFields): [ShapeField, string][] {
  const flag = (b: boolean) => (b ? "true" : "false");
  return [
    ["messages", String(s.messages)],
    ["system_prompt", flag(s.systemPrompt)],
    ["stream", flag(s.stream)],
    ["user", flag(s.user)],
    ["max_tokens", String(s.maxTokens)],
    ["temperature", s.temperature === undefined ? "" : String(s.temperature)],
    ["top_p", s.topP === undefined ? "" : String(s.topP)],
    ["seed", flag(s.seed)],
    ["stop", String(s.stop)],
    ["tools", String(s.tools)],
    ["response_format", s.responseFormat],
    ["prompt_tokens_log2", String(s.promptTokensLog2)],
    ["logprobs", flag(s.logprobs)],
  ];
}

function count(text: string, max: number): number | undefined {
  if (!/^\d{1,10}$/.test(text)) return undefined;
  const n = Number(text);
  return n <= max ? n : undefined;
}

function unit(text: string, max: number): number | undefined {
  if (text === "" || !/^\d+(\.\d+)?$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isFinite(n) && n <= max ? n : undefined;
}

/**
 * `shape` with `field` set from its FieldValueCount text; unchanged when
 * the field is unknown or the value does not parse (a router's report is
 * a claim to check, not a fact).
 */
export function withFieldValue(shape: ShapeFields, field: string, value: string): ShapeFields {
  const flag = value === "true" ? true : value === "false" ? false : undefined;
  switch (field) {
    case "messages": {
      const n = count(value, MAX_SHAPE_MESSAGES);
      return n === undefined || n === 0 ? shape : { ...shape, messages: n };
    }
    case "system_prompt":
      return flag === undefined ? shape : { ...shape, systemPrompt: flag };
    case "stream":
      return flag === undefined ? shape : { ...shape, stream: flag };
    case "user":
      return flag === undefined ? shape : { ...shape, user: flag };
    case "max_tokens": {
      const n = count(value, UINT32_MAX);
      return n === undefined ? shape : { ...shape, maxTokens: n };
    }
    case "temperature": {
      if (value === "") return { ...shape, temperature: undefined };
      const t = unit(value, 2);
      return t === undefined ? shape : { ...shape, temperature: roundTemperature(t) };
    }
    case "top_p": {
      if (value === "") return { ...shape, topP: undefined };
      const p = unit(value, 1);
      return p === undefined ? shape : { ...shape, topP: roundTopP(p) };
    }
    case "seed":
      return flag === undefined ? shape : { ...shape, seed: flag };
    case "stop": {
      const n = count(value, 4);
      return n === undefined ? shape : { ...shape, stop: n };
    }
    case "tools": {
      const n = count(value, MAX_SHAPE_TOOLS);
      return n === undefined ? shape : { ...shape, tools: n };
    }
    case "response_format":
      return ["", "text", "json_object", "json_schema"].includes(value)
        ? { ...shape, responseFormat: value }
        : shape;
    case "prompt_tokens_log2": {
      const n = count(value, 20);
      return n === undefined ? shape : { ...shape, promptTokensLog2: n };
    }
    case "logprobs":
      return flag === undefined ? shape : { ...shape, logprobs: flag };
    default:
      return shape;
  }
}
