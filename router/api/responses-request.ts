/**
 * `POST /v1/responses` (OpenAI's Responses API) for text, as a translation
 * onto the chat endpoint: the body becomes a chat completion body, which
 * then goes through the very same parser, billing, rate limits, usage and
 * failover as `/v1/chat/completions`. Only what maps onto a stateless chat
 * request is accepted; everything else is a 400 naming the field, never
 * silently ignored:
 *
 * - `input` (a string, or message items whose content is a string or
 *   `input_text` / `output_text` parts), `instructions` (a system message
 *   first), `max_output_tokens` (sent as `max_completion_tokens`, the name
 *   that bounds reasoning and answer tokens together), `temperature`,
 *   `top_p`, `stream`, `user`, `text.format` (text, JSON object or JSON
 *   schema), and `metadata` (echoed, never sent to a miner).
 * - Refused: tools and tool items, images, files and audio, reasoning
 *   options and items, `previous_response_id` and `conversation` (the
 *   router keeps no conversations), `store: true`, `background`, stored
 *   `prompt`s, and any field this file does not name.
 */
import { TensorClawError } from "../../common/errors.js";
import { type ParsedChatRequest, parseChatBody, type RequestOptions } from "./openai-request.js";

/** What the response object repeats of the request (OpenAI echoes these). */
export interface ResponsesEcho {
  readonly instructions: string | null;
  readonly maxOutputTokens: number | null;
  readonly temperature: number | null;
  readonly topP: number | null;
  readonly user: string | null;
  readonly metadata: Readonly<Record<string, string>>;
  /** `text.format` as asked (default `{type: "text"}`). */
  readonly textFormat: Readonly<Record<string, unknown>>;
}

/** A Responses body translated for the chat endpoint. */
export interface ResponsesRequest {
  /** The equivalent chat completion body (parsed by parseChatBody like any other). */
  readonly chatBody: Record<string, unknown>;
  readonly echo: ResponsesEcho;
}

type Json = Record<string, unknown>;

/** Fields refused, with why. */
const REFUSED: Readonly<Record<string, string>> = {
  tools: "Tools are not supported on /v1/responses; use /v1/chat/completions for tool calls.",
  previous_response_id: "The router keeps no responses: send the whole conversation in `input`.",
  conversation: "The router keeps no conversations: send the whole conversation in `input`.",
  background: "Background responses are not supported.",
  prompt: "Stored prompts are not supported.",
  reasoning: "Reasoning options are not supported on /v1/responses.",
  include: "`include` is not supported: the answer has no extra items to include.",
  top_logprobs: "Logprobs are not supported on /v1/responses; use /v1/chat/completions.",
  max_tool_calls: "Tools are not supported on /v1/responses.",
  service_tier: "`service_tier` is not supported.",
  prompt_cache_key: "Prompt caching is not supported.",
};

/** Fields read below (anything else is refused as unknown). */
const KNOWN = new Set([
  "model",
  "input",
  "instructions",
  "max_output_tokens",
  "temperature",
  "top_p",
  "stream",
  "stream_options",
  "user",
  "safety_identifier",
  "metadata",
  "store",
  "text",
  "truncation",
  "parallel_tool_calls",
  "tool_choice",
]);

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bad(param: string, message: string): never {
  throw new TensorClawError("invalid_request", message, { param });
}

function absent(v: unknown): boolean {
  return v === undefined || v === null;
}

/** The text of a message item's content: a string, or text parts joined. */
function contentText(content: unknown, at: string): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return bad(at, `\`${at}\` must be a string or an array of content parts.`);
  let text = "";
  content.forEach((part, k) => {
    const p = `${at}[${k}]`;
    if (!isObject(part)) bad(p, `\`${p}\` must be an object.`);
    if (part.type !== "input_text" && part.type !== "output_text") {
      bad(
        `${p}.type`,
        `\`${p}.type\` ${JSON.stringify(part.type)} is not supported: only input_text and output_text parts are.`,
      );
    }
    if (typeof part.text !== "string") bad(`${p}.text`, `\`${p}.text\` must be a string.`);
    text += part.text;
  });
  return text;
}

const ROLES = new Set(["user", "assistant", "system", "developer"]);

function inputMessages(input: unknown): Json[] {
  if (typeof input === "string") return [{ role: "user", content: input }];
  if (!Array.isArray(input) || input.length === 0) {
    return bad("input", "`input` is required: a string or a non-empty array of message items.");
  }
  return input.map((item, i) => {
    const p = `input[${i}]`;
    if (!isObject(item)) bad(p, `\`${p}\` must be an object.`);
    if (item.type !== undefined && item.type !== "message") {
      bad(
        `${p}.type`,
        `\`${p}.type\` ${JSON.stringify(item.type)} is not supported: only message items are.`,
      );
    }
    if (typeof item.role !== "string" || !ROLES.has(item.role)) {
      bad(`${p}.role`, `\`${p}.role\` must be "user", "assistant", "system" or "developer".`);
    }
    return { role: item.role, content: contentText(item.content, `${p}.content`) };
  });
}

function textFormat(text: unknown): { echo: Json; responseFormat: Json | undefined } {
  if (absent(text)) return { echo: { type: "text" }, responseFormat: undefined };
  if (!isObject(text)) return bad("text", "`text` must be an object.");
  for (const k of Object.keys(text)) {
    if (k !== "format" && k !== "verbosity") bad(`text.${k}`, `\`text.${k}\` is not supported.`);
  }
  const f = text.format;
  if (absent(f)) return { echo: { type: "text" }, responseFormat: undefined };
  if (!isObject(f)) return bad("text.format", "`text.format` must be an object.");
  if (f.type === "text") return { echo: { type: "text" }, responseFormat: undefined };
  if (f.type === "json_object")
    return { echo: { type: "json_object" }, responseFormat: { type: "json_object" } };
  if (f.type === "json_schema") {
    if (typeof f.name !== "string" || f.name === "")
      bad("text.format.name", "`text.format.name` is required.");
    const schema: Json = { name: f.name, schema: f.schema };
    if (typeof f.strict === "boolean") schema.strict = f.strict;
    if (typeof f.description === "string") schema.description = f.description;
    return { echo: f, responseFormat: { type: "json_schema", json_schema: schema } };
  }
  return bad("text.format.type", '`text.format.type` must be "text", "json_object" or "json_schema".');
}

function metadataOf(v: unknown): Record<string, string> {
  if (absent(v)) return {};
  if (!isObject(v) || Object.keys(v).length > 16) {
    return bad("metadata", "`metadata` must be an object of at most 16 string values.");
  }
  for (const [k, x] of Object.entries(v)) {
    if (k.length > 64 || typeof x !== "string" || x.length > 512) {
      bad("metadata", "`metadata` keys are at most 64 characters and values strings of at most 512.");
    }
  }
  return v as Record<string, string>;
}

/**
 * Validates a Responses body (parsed JSON) and translates it for the chat
 * endpoint. Throws `invalid_request` naming the field at fault. Numbers are
 * passed on as given: the chat parser checks their ranges.
 */
export function parseResponsesBody(body: unknown): ResponsesRequest {
  if (!isObject(body)) return bad("body", "The request body must be a JSON object.");
  for (const [key, value] of Object.entries(body)) {
    if (absent(value)) continue;
    const why = REFUSED[key];
    // An empty tool list asks for nothing.
    if (why !== undefined && !(key === "tools" && Array.isArray(value) && value.length === 0)) bad(key, why);
    if (why === undefined && !KNOWN.has(key)) bad(key, `\`${key}\` is not supported on /v1/responses.`);
  }
  if (body.store === true) bad("store", "`store: true` is not supported: the router keeps no responses.");
  if (body.background === true) bad("background", REFUSED.background as string);
  if (!absent(body.truncation) && body.truncation !== "disabled") {
    bad("truncation", '`truncation` must be "disabled": the router never drops input.');
  }
  if (!absent(body.tool_choice) && body.tool_choice !== "none" && body.tool_choice !== "auto") {
    bad("tool_choice", REFUSED.tools as string);
  }
  if (!absent(body.instructions) && typeof body.instructions !== "string") {
    bad("instructions", "`instructions` must be a string.");
  }
  const instructions = typeof body.instructions === "string" ? body.instructions : null;
  const messages = inputMessages(body.input);
  if (instructions !== null) messages.unshift({ role: "system", content: instructions });
  const format = textFormat(body.text);
  const user = typeof body.user === "string" ? body.user : body.safety_identifier;
  if (!absent(user) && typeof user !== "string") bad("user", "`user` must be a string.");
  const chatBody: Json = {
    model: body.model,
    messages,
    ...(absent(body.max_output_tokens) ? {} : { max_completion_tokens: body.max_output_tokens }),
    ...(absent(body.temperature) ? {} : { temperature: body.temperature }),
    ...(absent(body.top_p) ? {} : { top_p: body.top_p }),
    ...(absent(body.stream) ? {} : { stream: body.stream }),
    // The completed event carries usage: a stream always asks the miner for it.
    ...(body.stream === true ? { stream_options: { include_usage: true } } : {}),
    ...(typeof user === "string" ? { user } : {}),
    ...(format.responseFormat === undefined ? {} : { response_format: format.responseFormat }),
  };
  const num = (v: unknown) => (typeof v === "number" ? v : null);
  return {
    chatBody,
    echo: {
      instructions,
      maxOutputTokens: num(body.max_output_tokens),
      temperature: num(body.temperature),
      topP: num(body.top_p),
      user: typeof user === "string" ? user : null,
      metadata: metadataOf(body.metadata),
      textFormat: format.echo,
    },
  };
}

/** Chat field names as the Responses API calls them, for errors the chat parser raises. */
const PARAM_NAMES: readonly [RegExp, string][] = [
  [/^max_completion_tokens$/, "max_output_tokens"],
  [/^response_format(\..*)?$/, "text.format"],
  [/^messages(\[.*)?$/, "input"],
];

/**
 * The translated body through the chat endpoint's own parser; an error it
 * raises names the Responses field the caller sent, not the chat one.
 */
export function parseResponsesChat(chatBody: unknown, opts: RequestOptions): ParsedChatRequest {
  try {
    return parseChatBody(chatBody, opts);
  } catch (err) {
    if (!(err instanceof TensorClawError) || err.param === undefined) throw err;
    const hit = PARAM_NAMES.find(([re]) => re.test(err.param as string));
    if (hit === undefined) throw err;
    const message = err.message.replaceAll(`\`${err.param}\``, `\`${hit[1]}\``);
    throw new TensorClawError(err.code, message, { param: hit[1], cause: err });
  }
}
