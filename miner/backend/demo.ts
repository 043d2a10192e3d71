/**
 * The built-in demo backend, model `tensorclaw-demo`, for local experiments
 * and the `tensorclaw dev` network: no GPU and no HTTP server, but a real
 * (tiny) language model — a topic mixture of trigram models over BPE tokens
 * of a few pages of built-in English (common/demo-model/). It renders the
 * conversation with the demo chat template, samples an answer (greedy at
 * temperature 0, seeded otherwise), streams it one token per delta with a
 * delay between tokens, reports the real log-probability of every token when
 * asked, and counts tokens exactly. It writes English-ish prose, not useful
 * answers: it is still not a real LLM and must never be offered as one. Its
 * point is that its answers can be verified against the same model served by
 * `tensorclaw demo-model`.
 */

import { type ChatTurn, renderChatPrompt } from "../../common/demo-model/chat-template.js";
import {
  DEMO_EMBEDDING_MODEL_ID,
  demoDimensionsProblem,
  demoEmbedding,
} from "../../common/demo-model/embedding.js";
import {
  DEMO_CONTEXT_LENGTH,
  DEMO_MODEL_ID,
  type DemoModel,
  type GenerateOptions,
  loadDemoModel,
  MAX_TOP_LOGPROBS,
  type ModelToken,
  type StopReason,
} from "../../common/demo-model/model.js";
import { requestSeed } from "../../common/demo-model/sampling.js";
import { textOfParts } from "../../common/tokens/prompt.js";
import {
  type ChatRequest,
  type CompletionRequest,
  type EmbeddingRequest,
  FinishReason,
  type TokenLogprob,
} from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import {
  type Backend,
  type BackendEvent,
  BackendFailure,
  type DiscoveredModel,
  type EmbeddingResult,
} from "./backend.js";
import { demoCompletion } from "./demo-completion.js";
import type { StopSignal } from "./request-stop.js";
import { countTextTokens } from "./token-counter.js";

export { DEMO_EMBEDDING_MODEL_ID } from "../../common/demo-model/embedding.js";
export { DEMO_MODEL_ID } from "../../common/demo-model/model.js";

/** Delay between demo tokens. */
export const DEFAULT_TOKEN_DELAY_MS = 15;
/** Most tokens in a demo answer (per choice), whatever `max_tokens` allows, and when none is set. */
export const DEFAULT_ANSWER_TOKENS = 256;
/** Context window the demo model advertises. */
export const DEFAULT_CONTEXT_LENGTH = DEMO_CONTEXT_LENGTH;

/** Settings of the demo backend. */
export interface DemoBackendOptions {
  /** Delay between tokens in ms. Default {@link DEFAULT_TOKEN_DELAY_MS}. */
  readonly tokenDelayMs?: number;
  /** Most tokens in an answer. Default {@link DEFAULT_ANSWER_TOKENS}. */
  readonly answerTokens?: number;
  /** Context window advertised and enforced. Default {@link DEFAULT_CONTEXT_LENGTH}. */
  readonly contextLength?: number;
  /** Where the model comes from. Default: the built-in model, built on first use. */
  readonly loadModel?: () => Promise<DemoModel>;
}

/** A request's conversation as the demo template sees it (text parts joined, tool calls left out). */
export function demoChatTurns(chat: ChatRequest): ChatTurn[] {
  return chat.messages.map((m) => ({
    role: m.role,
    content: m.content ?? textOfParts(m.contentPartsJson),
  }));
}

/**
 * What the demo model is asked to generate for a chat request: the rendered
 * conversation, the smaller of `max_tokens` and `max_completion_tokens`
 * (whichever were sent) capped by `answerTokens` and the context left,
 * the request's temperature (OpenAI's default 1) and seed, and its
 * `top_logprobs` when it asked for logprobs. `top_p`, penalties and stop
 * sequences are not modelled (the demo model server ignores them too, so a
 * demo miner's answer still matches the reference). Throws a BackendFailure
 * when the prompt fills the context.
 */
export function demoGenerateOptions(
  model: DemoModel,
  chat: ChatRequest,
  limits: { readonly answerTokens: number; readonly contextLength: number },
): GenerateOptions {
  const promptTokens = model.encode(renderChatPrompt(demoChatTurns(chat)));
  const room = limits.contextLength - promptTokens.length;
  if (room < 1) {
    throw new BackendFailure(
      RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
      `the prompt has ${promptTokens.length} tokens; ${DEMO_MODEL_ID} holds ${limits.contextLength}`,
    );
  }
  const temperature = chat.temperature ?? 1;
  if (!(temperature >= 0)) {
    throw new BackendFailure(
      RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST,
      "temperature must be 0 or more",
    );
  }
  return {
    promptTokens,
    maxTokens: Math.min(
      chat.maxTokens ?? limits.answerTokens,
      chat.maxCompletionTokens ?? limits.answerTokens,
      limits.answerTokens,
      room,
    ),
    temperature,
    ...(chat.seed === undefined ? {} : { seed: chat.seed }),
    topLogprobs: chat.logprobs === true ? Math.min(chat.topLogprobs ?? 0, MAX_TOP_LOGPROBS) : 0,
  };
}

/**
 * The options of choice `index` of `n`: choice 0 is the request's own (so a
 * demo miner's first answer matches the reference model's), each later one
 * samples with the next seed after it, so choices differ yet repeat
 * exactly for the same request.
 */
export function demoChoiceOptions(opts: GenerateOptions, index: number): GenerateOptions {
  if (index === 0) return opts;
  const base =
    opts.seed === undefined ? BigInt(requestSeed(undefined, opts.promptTokens)) : BigInt(opts.seed);
  return { ...opts, seed: base + BigInt(index) };
}

/** A token as the tunnel carries its logprobs. */
export function tokenLogprob(t: ModelToken): TokenLogprob {
  return {
    token: t.text,
    logprob: t.logprob,
    topLogprobs: t.top.map((a) => ({ token: a.text, logprob: a.logprob })),
  };
}

function finishReason(r: StopReason): FinishReason {
  return r === "stop" ? FinishReason.FINISH_REASON_STOP : FinishReason.FINISH_REASON_LENGTH;
}

function sleep(ms: number, signal: StopSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** The demo backend. */
export class DemoBackend implements Backend {
  readonly description = `built-in demo model "${DEMO_MODEL_ID}" (a tiny n-gram model, not a real LLM)`;
  readonly #delayMs: number;
  readonly #answerTokens: number;
  readonly #contextLength: number;
  readonly #loadModel: () => Promise<DemoModel>;

  constructor(opts: DemoBackendOptions = {}) {
    this.#delayMs = opts.tokenDelayMs ?? DEFAULT_TOKEN_DELAY_MS;
    this.#answerTokens = opts.answerTokens ?? DEFAULT_ANSWER_TOKENS;
    this.#contextLength = opts.contextLength ?? DEFAULT_CONTEXT_LENGTH;
    this.#loadModel = opts.loadModel ?? loadDemoModel;
  }

  async listModels(): Promise<DiscoveredModel[]> {
    // Building the model here (once) keeps its start-up cost off the first request.
    await this.#loadModel();
    return [
      { id: DEMO_MODEL_ID, contextLength: this.#contextLength, kinds: ["chat", "completion"] },
      { id: DEMO_EMBEDDING_MODEL_ID, contextLength: this.#contextLength, kinds: ["embedding"] },
    ];
  }

  async *complete(model: string, req: CompletionRequest, signal: StopSignal): AsyncGenerator<BackendEvent> {
    if (model !== DEMO_MODEL_ID) {
      throw new BackendFailure(
        RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE,
        `the demo completes text only with ${DEMO_MODEL_ID}`,
      );
    }
    const m = await this.#loadModel();
    yield* demoCompletion(m, req, {
      answerTokens: this.#answerTokens,
      contextLength: this.#contextLength,
      pause: () =>
        this.#delayMs > 0
          ? sleep(this.#delayMs, signal)
          : signal.aborted
            ? Promise.reject(signal.reason)
            : Promise.resolve(),
    });
  }

  async embed(model: string, req: EmbeddingRequest, signal: StopSignal): Promise<EmbeddingResult> {
    if (model !== DEMO_EMBEDDING_MODEL_ID) {
      throw new BackendFailure(
        RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE,
        `the demo embeds only with ${DEMO_EMBEDDING_MODEL_ID}`,
      );
    }
    if (signal.aborted) throw signal.reason;
    const problem = req.dimensions === undefined ? undefined : demoDimensionsProblem(req.dimensions);
    if (problem !== undefined) {
      throw new BackendFailure(RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST, problem);
    }
    return {
      vectors: req.input.map((text) => demoEmbedding(text, req.dimensions)),
      promptTokens: req.input.reduce((n, text) => n + countTextTokens(text), 0),
    };
  }

  async *chat(model: string, chat: ChatRequest, signal: StopSignal): AsyncGenerator<BackendEvent> {
    if (model !== DEMO_MODEL_ID) {
      throw new BackendFailure(
        RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE,
        `the demo serves only ${DEMO_MODEL_ID}`,
      );
    }
    const m = await this.#loadModel();
    const opts = demoGenerateOptions(m, chat, {
      answerTokens: this.#answerTokens,
      contextLength: this.#contextLength,
    });
    let completionTokens = 0;
    // The choices one after another (OpenAI interleaves them; either order is valid).
    for (let index = 0; index < (chat.n ?? 1); index++) {
      completionTokens += yield* this.#answer(m, demoChoiceOptions(opts, index), index, chat, signal);
    }
    yield { type: "usage", promptTokens: opts.promptTokens.length, completionTokens };
  }

  /** Streams one choice; returns its token count. */
  async *#answer(
    m: DemoModel,
    opts: GenerateOptions,
    index: number,
    chat: ChatRequest,
    signal: StopSignal,
  ): AsyncGenerator<BackendEvent, number> {
    const withLogprobs = chat.logprobs === true;
    const choice = index === 0 ? {} : { choiceIndex: index };
    const tokens = m.stream(opts);
    let completionTokens = 0;
    // One token of look-ahead: the last delta carries the finish reason.
    let current = tokens.next();
    if (current.done === true) {
      if (signal.aborted) throw signal.reason;
      yield {
        type: "delta",
        content: "",
        reasoning: "",
        toolCalls: [],
        finishReason: finishReason(current.value),
        ...choice,
      };
    }
    while (current.done !== true) {
      if (this.#delayMs > 0) await sleep(this.#delayMs, signal);
      else if (signal.aborted) throw signal.reason;
      const token = current.value;
      const next = tokens.next();
      completionTokens++;
      yield {
        type: "delta",
        content: token.text,
        reasoning: "",
        toolCalls: [],
        finishReason: next.done === true ? finishReason(next.value) : FinishReason.FINISH_REASON_UNSPECIFIED,
        ...(withLogprobs ? { logprobs: [tokenLogprob(token)] } : {}),
        ...choice,
      };
      current = next;
    }
    return completionTokens;
  }
}
