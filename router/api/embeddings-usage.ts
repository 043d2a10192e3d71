/**
 * What an embeddings request is credited and held (README, Scoring): prompt
 * tokens only. The router counts the inputs itself with the model's
 * tokenizer and credits the lesser of the miner's claim and that count plus
 * the same allowances a chat prompt gets (one "message" per input: a
 * model may add a few special tokens around each). Until the tokenizer is
 * loaded, the bound is by bytes (router/usage/clamp.ts). Completion tokens
 * are always 0, whatever the miner says.
 */
import type { TokenCount } from "../../common/tokens/encodings.js";
import type { EmbeddingRequest } from "../../gen/tensorclaw/v1/chat.js";
import {
  type ClampedUsage,
  clampUsage,
  maxPromptTokens,
  PER_MESSAGE_ALLOWANCE,
  PER_REQUEST_ALLOWANCE,
  type PromptSize,
  type ReportedUsage,
} from "../usage/clamp.js";
import { creditFromCount } from "../usage/token-credit.js";

/** The inputs' size, as the usage bounds read it. */
export function embeddingPromptSize(req: EmbeddingRequest, inputBytes: number): PromptSize {
  return { bytes: inputBytes, messages: req.input.length };
}

/** The router's own token count of the inputs. */
export function countEmbeddingInputs(req: EmbeddingRequest, count: TokenCount): number {
  let n = 0;
  for (const s of req.input) n += count(s);
  return n;
}

/**
 * The credited usage of a completed embeddings request: the miner's prompt
 * count bounded by the router's (or by bytes without a tokenizer); 0
 * completion tokens. `counted`, when given, is the inputs' count already
 * made under `count` (for the hold).
 */
export function embeddingCredit(
  req: EmbeddingRequest,
  inputBytes: number,
  count: TokenCount | undefined,
  reported: ReportedUsage | undefined,
  counted?: number,
): ClampedUsage {
  const prompt =
    reported === undefined ? undefined : { promptTokens: reported.promptTokens, completionTokens: 0 };
  const clamped = reported !== undefined && reported.completionTokens > 0;
  const u =
    count === undefined
      ? clampUsage(embeddingPromptSize(req, inputBytes), { bytes: 0, maxTokens: 0 }, prompt)
      : creditFromCount(
          {
            promptTokens: counted ?? countEmbeddingInputs(req, count),
            completionTokens: 0,
            messages: req.input.length,
          },
          prompt,
        );
  return { promptTokens: u.promptTokens, completionTokens: 0, clamped: u.clamped || clamped };
}

/**
 * The most prompt tokens an embeddings request can be credited (what a
 * metered key's hold covers), and the router's count when it made one.
 */
export function embeddingWorstCase(
  req: EmbeddingRequest,
  inputBytes: number,
  count: TokenCount | undefined,
): { readonly promptTokens: number; readonly counted: number | undefined } {
  if (count === undefined) {
    return { promptTokens: maxPromptTokens(embeddingPromptSize(req, inputBytes)), counted: undefined };
  }
  const counted = countEmbeddingInputs(req, count);
  return {
    promptTokens: counted + PER_MESSAGE_ALLOWANCE * req.input.length + PER_REQUEST_ALLOWANCE,
    counted,
  };
}
