/**
 * How many completion tokens the router credits, holds and reserves for a
 * chat request (README, For API users). The caller's `max_tokens` and
 * `max_completion_tokens` travel to the backend exactly as sent; the router
 * never injects one. It still needs a bound of its own for what it credits
 * and what it holds, per choice: the *completion ceiling*.
 */
import type { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import { ESTIMATE_BYTES_PER_TOKEN, type PromptSize } from "../usage/clamp.js";

/**
 * Most choices one request may ask for (`n`). Each choice is a whole answer
 * a miner must generate, and the worst case held for a metered key grows
 * with it; eight covers sampling-and-ranking uses without letting one
 * request occupy a miner like a batch.
 */
export const MAX_CHOICES = 8;

/**
 * Completion tokens per choice that the tokens-per-minute reservation
 * assumes when the caller set no limit. Reserving the full ceiling (often
 * the model's whole context) would let one request use up a key's minute;
 * the reservation is settled to the credited count when the request ends,
 * so a longer answer is still allowed and charged to the bucket then.
 */
export const UNLIMITED_RESERVE_TOKENS = 256;

/** The choices a request asks for (`n`, 1 when absent). */
export function choicesOf(chat: Pick<ChatRequest, "n">): number {
  return Math.max(chat.n ?? 1, 1);
}

/** The smaller of the caller's two limits, or undefined when it set neither. */
export function askedLimit(chat: Pick<ChatRequest, "maxTokens" | "maxCompletionTokens">): number | undefined {
  const a = chat.maxTokens;
  const b = chat.maxCompletionTokens;
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/**
 * The completion ceiling per choice: the caller's smaller limit when it set
 * one, else the model's context length when the catalogue knows it, else
 * `fallback` (the router's `defaultMaxTokens`: credited and held when
 * nothing else bounds an answer, never sent upstream).
 */
export function completionCeiling(
  chat: Pick<ChatRequest, "maxTokens" | "maxCompletionTokens">,
  contextLength: number,
  fallback: number,
): number {
  const asked = askedLimit(chat);
  if (asked !== undefined) return asked;
  return contextLength > 0 ? contextLength : fallback;
}

/**
 * Tokens a request reserves on its key's tokens-per-minute bucket before it
 * is served: the prompt estimate plus, per choice, the caller's limit, or
 * {@link UNLIMITED_RESERVE_TOKENS} when it set none.
 */
export function reservedTokens(chat: ChatRequest, prompt: PromptSize): number {
  const perChoice = askedLimit(chat) ?? UNLIMITED_RESERVE_TOKENS;
  return Math.ceil(prompt.bytes / ESTIMATE_BYTES_PER_TOKEN) + choicesOf(chat) * perChoice;
}
