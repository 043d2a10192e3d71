/**
 * The JSON the demo model server answers with, in OpenAI's shapes: chat
 * completions (whole and as stream chunks) with `choices[].logprobs.content`,
 * and legacy text completions with the `logprobs` object vLLM and OpenAI's
 * `/v1/completions` return (`tokens`, `token_logprobs`, `top_logprobs`,
 * `text_offset`). Pure builders; the server adds nothing but transport.
 */
import type { ModelToken, StopReason, TokenChoice } from "./model.js";

/** Fields every response object repeats. */
export interface ResponseMeta {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly model: string;
}

/** OpenAI `usage`. */
export interface Usage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

/** Usage from token counts. */
export function usage(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

const utf8 = new TextEncoder();

function choiceJson(t: TokenChoice) {
  return { token: t.text, logprob: t.logprob, bytes: Array.from(utf8.encode(t.text)) };
}

/** One entry of chat `logprobs.content`. */
export function chatTokenLogprob(t: ModelToken) {
  const c = choiceJson(t);
  return { token: c.token, logprob: c.logprob, bytes: c.bytes, top_logprobs: t.top.map(choiceJson) };
}

/** A whole chat completion; `logprobs` undefined when the request did not ask for them. */
export function chatCompletion(
  meta: ResponseMeta,
  tokens: readonly ModelToken[],
  withLogprobs: boolean,
  finish: StopReason,
  promptTokens: number,
) {
  return {
    id: meta.id,
    object: "chat.completion",
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        message: { role: "assistant", content: tokens.map((t) => t.text).join("") },
        logprobs: withLogprobs ? { content: tokens.map(chatTokenLogprob) } : null,
        finish_reason: finish,
      },
    ],
    usage: usage(promptTokens, tokens.length),
  };
}

/** One chat stream chunk. */
export function chatChunk(
  meta: ResponseMeta,
  delta: { role?: string; content?: string },
  token: ModelToken | undefined,
  withLogprobs: boolean,
  finish: StopReason | null,
) {
  return {
    id: meta.id,
    object: "chat.completion.chunk",
    created: meta.created,
    model: meta.model,
    choices: [
      {
        index: 0,
        delta,
        logprobs: withLogprobs && token !== undefined ? { content: [chatTokenLogprob(token)] } : null,
        finish_reason: finish,
      },
    ],
  };
}

/** The last chunk of a stream that asked for `stream_options.include_usage`. */
export function usageChunk(meta: ResponseMeta, u: Usage) {
  return {
    id: meta.id,
    object: "chat.completion.chunk",
    created: meta.created,
    model: meta.model,
    choices: [],
    usage: u,
  };
}

/** A token of a legacy completion: its logprob and alternatives are null for the first prompt token. */
export interface LegacyToken {
  readonly text: string;
  readonly logprob: number | null;
  readonly top: readonly TokenChoice[] | null;
}

/**
 * The legacy `logprobs` object. `top_logprobs[i]` maps token text to
 * logprob for the most likely alternatives, most likely first, plus the
 * chosen token itself (so it may hold k + 1 entries, as OpenAI and vLLM
 * do). `text_offset[i]` is where token i starts in the choice's `text`.
 */
export function legacyLogprobs(tokens: readonly LegacyToken[]) {
  const textOffset: number[] = [];
  let offset = 0;
  for (const t of tokens) {
    textOffset.push(offset);
    offset += t.text.length;
  }
  return {
    tokens: tokens.map((t) => t.text),
    token_logprobs: tokens.map((t) => t.logprob),
    top_logprobs: tokens.map((t) => {
      if (t.top === null || t.logprob === null) return null;
      // No prototype: token texts are data, and one could be "__proto__".
      const entries: Record<string, number> = Object.create(null);
      for (const a of t.top) entries[a.text] ??= a.logprob;
      entries[t.text] ??= t.logprob;
      return entries;
    }),
    text_offset: textOffset,
  };
}

/** A whole legacy text completion. */
export function textCompletion(
  meta: ResponseMeta,
  text: string,
  logprobs: ReturnType<typeof legacyLogprobs> | null,
  finish: StopReason,
  u: Usage,
) {
  return {
    id: meta.id,
    object: "text_completion",
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, text, logprobs, finish_reason: finish }],
    usage: u,
  };
}
