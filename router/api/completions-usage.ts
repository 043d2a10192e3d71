/**
 * What a completions request is credited and held (README, Scoring), by
 * chat's rules stretched over several prompts and choices: the prompt is
 * the router's count of every prompt (and the suffix once per prompt) plus
 * the template allowances per prompt; the completion is the router's count
 * of the text it relayed, plus one end-of-text token per choice, and never
 * more than the per-choice ceiling for every choice. When the caller asked
 * for `echo`, the prompts the answer repeats are not completion work.
 */
import type { TokenCount } from "../../common/tokens/encodings.js";
import type { CompletionRequest } from "../../gen/tensorclaw/v1/chat.js";
import {
  type ClampedUsage,
  clampUsage,
  FINISH_TOKEN_ALLOWANCE,
  maxPromptTokens,
  PER_MESSAGE_ALLOWANCE,
  PER_REQUEST_ALLOWANCE,
  type PromptSize,
  type ReportedUsage,
} from "../usage/clamp.js";

/** The prompts' size, as the byte bounds read it (one "message" per prompt). */
export function completionPromptSize(req: CompletionRequest, promptBytes: number): PromptSize {
  return { bytes: promptBytes, messages: req.prompt.length };
}

/** The router's count of the prompts (each with the suffix). */
export function countCompletionPrompt(req: CompletionRequest, count: TokenCount): number {
  const suffix = count(req.suffix);
  let n = 0;
  for (const p of req.prompt) n += count(p) + suffix;
  return n;
}

/** Choices asked for. */
export function completionChoices(req: CompletionRequest): number {
  return req.prompt.length * Math.max(1, req.n ?? 1);
}

/** The most completion tokens the request can be credited: the ceiling plus end-of-text, per choice. */
export function completionCeiling(req: CompletionRequest, perChoice: number): number {
  return completionChoices(req) * (perChoice + FINISH_TOKEN_ALLOWANCE);
}

/** The most tokens a request can be credited (what a metered key's hold covers). */
export function completionWorstCase(
  req: CompletionRequest,
  promptBytes: number,
  perChoice: number,
  count: TokenCount | undefined,
): {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly counted: number | undefined;
} {
  const completionTokens = completionCeiling(req, perChoice);
  if (count === undefined) {
    return {
      promptTokens: maxPromptTokens(completionPromptSize(req, promptBytes)),
      completionTokens,
      counted: undefined,
    };
  }
  const counted = countCompletionPrompt(req, count);
  return {
    promptTokens: counted + PER_MESSAGE_ALLOWANCE * req.prompt.length + PER_REQUEST_ALLOWANCE,
    completionTokens,
    counted,
  };
}

function sane(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

/** What the router saw of one answer. */
export interface RelayedCompletion {
  /** The text relayed per choice (by choice index; a choice that sent nothing may be absent). */
  readonly choices: readonly (string | undefined)[];
  /** UTF-8 bytes relayed, all choices. */
  readonly bytes: number;
}

/**
 * The credited usage: the miner's report (absent: the router's own count)
 * bounded by the router's count plus allowances, or by bytes before the
 * tokenizer is loaded. `counted`: the prompt count already made for the hold.
 */
export function completionCredit(
  req: CompletionRequest,
  promptBytes: number,
  perChoice: number,
  out: RelayedCompletion,
  count: TokenCount | undefined,
  reported: ReportedUsage | undefined,
  counted?: number,
): ClampedUsage {
  const ceiling = completionCeiling(req, perChoice);
  if (count === undefined) {
    return clampUsage(
      completionPromptSize(req, promptBytes),
      { bytes: out.bytes, maxTokens: ceiling },
      reported,
    );
  }
  const prompt = counted ?? countCompletionPrompt(req, count);
  const n = Math.max(1, req.n ?? 1);
  // Each choice is bounded on its own: one choice cannot borrow another's ceiling.
  let completion = 0;
  let cMax = 0;
  out.choices.forEach((text, i) => {
    if (text === undefined || i >= completionChoices(req)) return;
    const echoed = req.echo ? count(req.prompt[Math.floor(i / n)] ?? "") : 0;
    const tokens = Math.max(0, count(text) - echoed);
    completion += Math.min(tokens, perChoice);
    cMax += Math.min(tokens + FINISH_TOKEN_ALLOWANCE, perChoice + FINISH_TOKEN_ALLOWANCE);
  });
  const pMax = prompt + PER_MESSAGE_ALLOWANCE * req.prompt.length + PER_REQUEST_ALLOWANCE;
  if (reported === undefined) return { promptTokens: prompt, completionTokens: completion, clamped: false };
  const p = sane(reported.promptTokens);
  const c = sane(reported.completionTokens);
  const promptTokens = Math.min(p, pMax);
  const completionTokens = Math.min(c, cMax);
  return { promptTokens, completionTokens, clamped: promptTokens < p || completionTokens < c };
}
