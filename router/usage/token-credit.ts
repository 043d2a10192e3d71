import type { TokenCount } from "../../common/tokens/encodings.js";
import { countPromptTokens } from "../../common/tokens/prompt.js";
import type { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { RelayedText } from "../tunnel/types.js";
import {
  type ClampedUsage,
  FINISH_TOKEN_ALLOWANCE,
  PER_MESSAGE_ALLOWANCE,
  PER_REQUEST_ALLOWANCE,
  type ReportedUsage,
} from "./clamp.js";

/**
 * Credit from the router's own token count. The router tokenizes the prompt
 * it sent and the completion it relayed (content, reasoning, tool-call
 * names and arguments) with the model's catalogue tokenizer, and credits
 *
 *     prompt     = min(reported, counted_prompt + 8 × messages + 16)
 *     completion = min(reported, counted_completion + 1 per choice)
 *
 * The allowances are the chat template's own tokens, which the router cannot
 * see: role markers and separators per message, begin-of-text and the
 * assistant header per request, and one end-of-turn token per answer. A
 * miner that sends no report is credited the router's count alone. Padding,
 * inflated reports and filler that never reached the router earn nothing.
 */

/** What the router counted for one request. */
export interface RouterCount {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly messages: number;
}

/**
 * Counts a request's prompt and relayed completion with one encoding.
 * `promptTokens`, when given, is the prompt's count under the same encoding
 * made earlier (the billing hold counts it before dispatch).
 */
export function countRequest(
  chat: ChatRequest,
  text: RelayedText,
  count: TokenCount,
  promptTokens?: number,
): RouterCount {
  return {
    promptTokens: promptTokens ?? countPromptTokens(chat, count),
    completionTokens: count(text.content) + count(text.reasoning) + count(text.tools),
    messages: chat.messages.length,
  };
}

function sane(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/**
 * The credited counts: the miner's report bounded by the router's count plus
 * the allowances (one end-of-turn token per answer: `answers` is the
 * request's choices).
 */
export function creditFromCount(
  counted: RouterCount,
  reported: ReportedUsage | undefined,
  answers = 1,
): ClampedUsage {
  if (reported === undefined) {
    return { promptTokens: counted.promptTokens, completionTokens: counted.completionTokens, clamped: false };
  }
  const pMax = counted.promptTokens + PER_MESSAGE_ALLOWANCE * counted.messages + PER_REQUEST_ALLOWANCE;
  const cMax = counted.completionTokens + FINISH_TOKEN_ALLOWANCE * answers;
  const p = sane(reported.promptTokens);
  const c = sane(reported.completionTokens);
  const promptTokens = Math.min(p, pMax);
  const completionTokens = Math.min(c, cMax);
  return { promptTokens, completionTokens, clamped: promptTokens < p || completionTokens < c };
}
