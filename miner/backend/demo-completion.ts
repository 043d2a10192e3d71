/**
 * Legacy text completions from the demo model: each prompt is continued as
 * raw text (no chat template), `n` samples per prompt (sample s of a seeded
 * request uses seed + s, so samples differ yet repeat), one token per delta
 * with the demo's delay, choice by choice. `max_tokens` defaults to 16 as
 * in OpenAI's API; `echo` repeats the prompt first; `logprobs` reports the
 * model's real alternatives.
 */

import {
  DEMO_COMPLETION_MIN_TOKENS,
  type DemoModel,
  MAX_TOP_LOGPROBS,
  type StopReason,
} from "../../common/demo-model/model.js";
import { type CompletionRequest, FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { type BackendEvent, BackendFailure } from "./backend.js";

/** OpenAI's legacy default for `max_tokens`. */
export const LEGACY_DEFAULT_MAX_TOKENS = 16;

/** Limits of the demo backend. */
export interface DemoCompletionLimits {
  readonly answerTokens: number;
  readonly contextLength: number;
  /** Waits between tokens (rejects when the request is stopped). */
  readonly pause: () => Promise<void>;
}

function finish(r: StopReason): FinishReason {
  return r === "stop" ? FinishReason.FINISH_REASON_STOP : FinishReason.FINISH_REASON_LENGTH;
}

/** Streams the completion's choices, then usage. */
export async function* demoCompletion(
  model: DemoModel,
  req: CompletionRequest,
  limits: DemoCompletionLimits,
): AsyncGenerator<BackendEvent> {
  const temperature = req.temperature ?? 1;
  if (!(temperature >= 0)) {
    throw new BackendFailure(
      RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
      "temperature must be 0 or more",
    );
  }
  const n = Math.max(1, req.n ?? 1);
  const top = req.logprobs === undefined ? undefined : Math.min(req.logprobs, MAX_TOP_LOGPROBS);
  let promptTokens = 0;
  let completionTokens = 0;
  for (let p = 0; p < req.prompt.length; p++) {
    const text = req.prompt[p] as string;
    const ids = model.encode(text);
    promptTokens += ids.length;
    const room = limits.contextLength - ids.length;
    if (room < 1) {
      throw new BackendFailure(
        RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
        `prompt ${p} has ${ids.length} tokens; the demo model holds ${limits.contextLength}`,
      );
    }
    for (let s = 0; s < n; s++) {
      const choiceIndex = p * n + s;
      if (req.echo) {
        yield { type: "delta", content: text, reasoning: "", toolCalls: [], finishReason: 0, choiceIndex };
      }
      const tokens = model.stream({
        promptTokens: ids,
        maxTokens: Math.min(req.maxTokens ?? LEGACY_DEFAULT_MAX_TOKENS, limits.answerTokens, room),
        // As the demo model server completes (a reference must write the same answer).
        minTokens: DEMO_COMPLETION_MIN_TOKENS,
        temperature,
        ...(req.seed === undefined ? {} : { seed: req.seed + BigInt(s) }),
        topLogprobs: top ?? 0,
      });
      let current = tokens.next();
      if (current.done === true) {
        yield {
          type: "delta",
          content: "",
          reasoning: "",
          toolCalls: [],
          finishReason: finish(current.value),
          choiceIndex,
        };
      }
      while (current.done !== true) {
        await limits.pause();
        const token = current.value;
        const next = tokens.next();
        completionTokens++;
        yield {
          type: "delta",
          content: token.text,
          reasoning: "",
          toolCalls: [],
          finishReason: next.done === true ? finish(next.value) : FinishReason.FINISH_REASON_UNSPECIFIED,
          choiceIndex,
          ...(top === undefined
            ? {}
            : {
                logprobs: [
                  {
                    token: token.text,
                    logprob: token.logprob,
                    topLogprobs: token.top.map((a) => ({ token: a.text, logprob: a.logprob })),
                  },
                ],
              }),
        };
        current = next;
      }
    }
  }
  yield { type: "usage", promptTokens, completionTokens };
}
