/**
 * Turns a tunnel ChatRequest back into an OpenAI `POST /chat/completions`
 * JSON body, as chat.proto prescribes: each field maps to the OpenAI field of
 * the same name, then the keys of `extra_json` are merged in without
 * overriding any structured field. The miner streams from the backend when
 * the user streams (always asking for usage, so it can report the backend's
 * own counts) and asks for one whole completion otherwise.
 *
 * The router already validated the request, but a miner still treats it as
 * input from the network: JSON-carrying fields that do not parse are
 * refused with INVALID_REQUEST instead of being forwarded as garbage.
 */
import { MAX_TOP_LOGPROBS } from "../../common/chunk-logprobs.js";
import type { ChatMessage, ChatRequest, Tool } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { BackendFailure } from "./backend.js";

type Json = Record<string, unknown>;

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new BackendFailure(
      RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
      `${what} is not valid JSON`,
      {
        cause,
      },
    );
  }
}

function message(m: ChatMessage, i: number): Json {
  const out: Json = { role: m.role };
  if (m.contentPartsJson !== "") {
    const parts = parseJson(m.contentPartsJson, `messages[${i}].content`);
    if (!Array.isArray(parts)) {
      throw new BackendFailure(
        RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
        `messages[${i}].content parts must be a JSON array`,
      );
    }
    out.content = parts;
  } else {
    // Absent content is JSON null: an assistant turn that only calls tools.
    out.content = m.content ?? null;
  }
  if (m.name !== "") out.name = m.name;
  if (m.toolCalls.length > 0) {
    out.tool_calls = m.toolCalls.map((t) => ({
      id: t.id,
      type: t.type === "" ? "function" : t.type,
      function: { name: t.functionName, arguments: t.functionArguments },
    }));
  }
  if (m.toolCallId !== "") out.tool_call_id = m.toolCallId;
  return out;
}

function tool(t: Tool, i: number): Json {
  const fn: Json = { name: t.name };
  if (t.description !== "") fn.description = t.description;
  if (t.parametersJson !== "") fn.parameters = parseJson(t.parametersJson, `tools[${i}].parameters`);
  if (t.strict !== undefined) fn.strict = t.strict;
  return { type: t.type === "" ? "function" : t.type, function: fn };
}

/** The JSON body for the backend, for `model`. */
export function openAIRequestBody(model: string, chat: ChatRequest): Json {
  const body: Json = {
    model,
    messages: chat.messages.map(message),
    stream: chat.stream,
  };
  if (chat.stream) body.stream_options = { include_usage: true };
  if (chat.temperature !== undefined) body.temperature = chat.temperature;
  if (chat.topP !== undefined) body.top_p = chat.topP;
  // Both limits as the user sent them, under their own names: reasoning models refuse
  // `max_tokens`, older servers know only it.
  if (chat.maxTokens !== undefined) body.max_tokens = chat.maxTokens;
  if (chat.maxCompletionTokens !== undefined) body.max_completion_tokens = chat.maxCompletionTokens;
  if (chat.n !== undefined) body.n = chat.n;
  if (chat.stop.length > 0) body.stop = chat.stop;
  if (chat.seed !== undefined) body.seed = Number(chat.seed);
  if (chat.frequencyPenalty !== undefined) body.frequency_penalty = chat.frequencyPenalty;
  if (chat.presencePenalty !== undefined) body.presence_penalty = chat.presencePenalty;
  if (chat.tools.length > 0) body.tools = chat.tools.map(tool);
  const choice = chat.toolChoice?.choice;
  if (choice?.$case === "mode") body.tool_choice = choice.value;
  if (choice?.$case === "functionName")
    body.tool_choice = { type: "function", function: { name: choice.value } };
  if (chat.parallelToolCalls !== undefined) body.parallel_tool_calls = chat.parallelToolCalls;
  if (chat.responseFormat !== undefined && chat.responseFormat.type !== "") {
    const rf: Json = { type: chat.responseFormat.type };
    if (chat.responseFormat.jsonSchemaJson !== "") {
      rf.json_schema = parseJson(chat.responseFormat.jsonSchemaJson, "response_format.json_schema");
    }
    body.response_format = rf;
  }
  if (chat.user !== "") body.user = chat.user;
  if (chat.logprobs !== undefined) body.logprobs = chat.logprobs;
  // OpenAI refuses `top_logprobs` without `logprobs: true`, and more than 20.
  if (chat.logprobs === true && chat.topLogprobs !== undefined) {
    body.top_logprobs = Math.min(chat.topLogprobs, MAX_TOP_LOGPROBS);
  }
  if (chat.extraJson !== "") {
    const extra = parseJson(chat.extraJson, "extra fields");
    if (typeof extra !== "object" || extra === null || Array.isArray(extra)) {
      throw new BackendFailure(
        RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
        "extra fields must be a JSON object",
      );
    }
    for (const [k, v] of Object.entries(extra)) {
      // Structured fields win; `stream`, `stream_options` and `n` stay ours because the relay depends on them.
      if (k in body || k === "n" || k === "stream_options" || k === "__proto__") continue;
      body[k] = v;
    }
  }
  return body;
}
