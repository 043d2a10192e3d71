/**
 * Bounds on the token counts a miner may be credited for, from what the
 * router can see itself. A miner reports its own usage; these bounds make sure
 * that inflating the report earns nothing.
 *
 * # The bounds
 *
 * Completion tokens: every token a byte-level BPE tokenizer (GPT, Llama,
 * Qwen, Mistral...) emits decodes to at least one byte, except special tokens
 * such as end-of-turn. So
 *
 *     credited_completion <= relayed_bytes + FINISH_TOKEN_ALLOWANCE
 *
 * where `relayed_bytes` is the UTF-8 size of every content, reasoning and
 * tool-call fragment the router actually carried for the request. It is also
 * never more than the `max_tokens` the router asked for.
 *
 * Prompt tokens: the prompt's tokens come from the text the router sent
 * (message contents, names, tool calls and tool definitions, counted in UTF-8
 * bytes) plus the chat template's markers, which add a few special tokens
 * per message. So
 *
 *     credited_prompt <= prompt_bytes + PER_MESSAGE_ALLOWANCE * messages + PER_REQUEST_ALLOWANCE
 *
 * Content parts such as images are counted by the bytes of their JSON; a
 * vision model that spends more tokens on an image than its URL has bytes is
 * under-credited, never over-credited.
 *
 * When a miner sends no count (the request was cancelled or failed before its
 * terminal frame), the estimate is one token per four bytes, rounded up, under
 * the same bounds.
 */

/** Special tokens a finished answer may carry without bytes (end-of-turn, tool-call markers). */
export const FINISH_TOKEN_ALLOWANCE = 1;
/** Template tokens per message (role markers, separators). */
export const PER_MESSAGE_ALLOWANCE = 8;
/** Template tokens per request (begin-of-text, assistant header). */
export const PER_REQUEST_ALLOWANCE = 16;
/** Bytes per token assumed when the miner gave no count. */
export const ESTIMATE_BYTES_PER_TOKEN = 4;

/** What the router knows about one request's prompt. */
export interface PromptSize {
  /** UTF-8 bytes of all prompt text (see the module comment). */
  readonly bytes: number;
  /** Number of messages. */
  readonly messages: number;
}

/** What the router observed of one request's answer. */
export interface RelayedOutput {
  /** UTF-8 bytes of chunk payload carried. */
  readonly bytes: number;
  /** The most completion tokens the request may be credited (all choices). */
  readonly maxTokens: number;
  /** Answers (choices) the bytes belong to, each allowed its end-of-turn token; default 1. */
  readonly answers?: number;
}

/** Counts as reported by the miner; undefined when it sent none. */
export interface ReportedUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

/** Credited counts. */
export interface ClampedUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** True when a reported count was lowered. */
  readonly clamped: boolean;
}

/** Most prompt tokens the prompt could hold. */
export function maxPromptTokens(prompt: PromptSize): number {
  return prompt.bytes + PER_MESSAGE_ALLOWANCE * prompt.messages + PER_REQUEST_ALLOWANCE;
}

/** Most completion tokens the relayed output could hold. */
export function maxCompletionTokens(out: RelayedOutput): number {
  return Math.min(out.bytes + FINISH_TOKEN_ALLOWANCE * (out.answers ?? 1), out.maxTokens);
}

function sane(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/**
 * Credited usage for one request. With a report, each count is the report
 * bounded by what the router saw; without one, an estimate from bytes under
 * the same bounds. Counts are non-negative integers.
 */
export function clampUsage(
  prompt: PromptSize,
  out: RelayedOutput,
  reported: ReportedUsage | undefined,
): ClampedUsage {
  const pMax = maxPromptTokens(prompt);
  const cMax = maxCompletionTokens(out);
  if (reported === undefined) {
    // A miner that produced nothing did no work we can verify.
    if (out.bytes === 0) return { promptTokens: 0, completionTokens: 0, clamped: false };
    return {
      promptTokens: Math.min(Math.ceil(prompt.bytes / ESTIMATE_BYTES_PER_TOKEN), pMax),
      completionTokens: Math.min(Math.ceil(out.bytes / ESTIMATE_BYTES_PER_TOKEN), cMax),
      clamped: false,
    };
  }
  const p = sane(reported.promptTokens);
  const c = sane(reported.completionTokens);
  const promptTokens = Math.min(p, pMax);
  const completionTokens = Math.min(c, cMax);
  return { promptTokens, completionTokens, clamped: promptTokens < p || completionTokens < c };
}
