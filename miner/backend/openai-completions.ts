/**
 * The OpenAI `/v1/completions` exchange of an OpenAI-compatible backend:
 * the body posted (the tunnel's CompletionRequest as OpenAI names it) and
 * the mapping of `text_completion` objects — streamed or whole — to
 * BackendEvents, every choice kept apart by its `index`. Legacy logprobs
 * (`tokens`, `token_logprobs`, `top_logprobs` as {token: logprob} maps) come
 * back as TokenLogprobs. Everything is read defensively: the backend is
 * untrusted, and the router checks choice indexes again.
 */
import type { CompletionRequest, TokenLogprob } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { type BackendEvent, BackendFailure } from "./backend.js";
import { finishReasonOf } from "./openai-chunk.js";
import { splitDelta } from "./openai-logprobs.js";

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function count(v: unknown): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/** The JSON body posted to the backend's `/completions`. */
export function completionRequestBody(model: string, req: CompletionRequest): Json {
  const body: Json = {
    model,
    prompt: req.prompt.length === 1 ? req.prompt[0] : req.prompt,
    stream: req.stream,
  };
  if (req.stream) body.stream_options = { include_usage: true };
  if (req.suffix !== "") body.suffix = req.suffix;
  if (req.maxTokens !== undefined) body.max_tokens = req.maxTokens;
  if (req.temperature !== undefined) body.temperature = req.temperature;
  if (req.topP !== undefined) body.top_p = req.topP;
  if (req.n !== undefined) body.n = req.n;
  if (req.logprobs !== undefined) body.logprobs = req.logprobs;
  if (req.echo) body.echo = true;
  if (req.stop.length > 0) body.stop = req.stop;
  if (req.seed !== undefined) body.seed = Number(req.seed);
  if (req.frequencyPenalty !== undefined) body.frequency_penalty = req.frequencyPenalty;
  if (req.presencePenalty !== undefined) body.presence_penalty = req.presencePenalty;
  if (req.user !== "") body.user = req.user;
  return body;
}

/** Legacy logprobs of one choice as TokenLogprobs (at most `top` alternatives each). */
export function legacyLogprobsOf(v: unknown, top: number): TokenLogprob[] {
  const lp = obj(v);
  if (lp === undefined || !Array.isArray(lp.tokens)) return [];
  const values = Array.isArray(lp.token_logprobs) ? lp.token_logprobs : [];
  const alts = Array.isArray(lp.top_logprobs) ? lp.top_logprobs : [];
  return lp.tokens.map((t, i) => {
    const value = values[i];
    const map = obj(alts[i]) ?? {};
    return {
      token: typeof t === "string" ? t : "",
      // null is what servers send for the first echoed token: no probability, read as impossible.
      logprob: typeof value === "number" ? value : Number.NEGATIVE_INFINITY,
      topLogprobs: Object.entries(map)
        .filter((e): e is [string, number] => typeof e[1] === "number")
        .slice(0, top)
        .map(([token, logprob]) => ({ token, logprob })),
    };
  });
}

/**
 * The events of one `text_completion` object (a stream event or a whole
 * body): a delta per choice, then usage when it carries one. `top`: the
 * `logprobs` asked for (undefined: none are read).
 */
export function eventsFromTextCompletion(doc: unknown, top: number | undefined): BackendEvent[] {
  const d = obj(doc);
  if (d === undefined) {
    throw new BackendFailure(
      RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
      "the backend sent a non-object",
    );
  }
  const out: BackendEvent[] = [];
  const choices = Array.isArray(d.choices) ? d.choices : [];
  for (let i = 0; i < choices.length; i++) {
    const c = obj(choices[i]);
    if (c === undefined) continue;
    const choiceIndex = Math.min(count(c.index) ?? i, 0xffffffff);
    const delta = {
      type: "delta" as const,
      content: typeof c.text === "string" ? c.text : "",
      reasoning: "",
      toolCalls: [],
      finishReason: finishReasonOf(c.finish_reason),
      ...(top === undefined ? {} : { logprobs: legacyLogprobsOf(c.logprobs, top) }),
    };
    for (const piece of splitDelta(delta)) out.push({ ...piece, choiceIndex });
  }
  const u = obj(d.usage);
  if (u !== undefined) {
    const p = count(u.prompt_tokens);
    const c = count(u.completion_tokens);
    if (p !== undefined && c !== undefined) out.push({ type: "usage", promptTokens: p, completionTokens: c });
  }
  return out;
}
