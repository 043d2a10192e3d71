/**
 * The built-in demo model, `tensorclaw-demo`, for local experiments and the
 * `tensorclaw dev` network: no GPU, no HTTP server, but real behaviour. The
 * answer is deterministic (a passage picked by the prompt's hash), streamed
 * one real BPE token at a time with a delay between tokens, honours
 * `max_tokens` (finish reason "length") and reports real token counts.
 * It is clearly not a language model and must never be offered as one.
 */
import { decode, encode } from "gpt-tokenizer";
import { type ChatRequest, FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { type Backend, type BackendEvent, BackendFailure, type DiscoveredModel } from "./backend.js";
import type { StopSignal } from "./request-stop.js";
import { countPromptTokens } from "./token-counter.js";

/** The demo model's id. */
export const DEMO_MODEL_ID = "tensorclaw-demo";

const PASSAGES = [
  "This is the TensorClaw demo model. It is not a language model: it streams a fixed passage so you can see a request travel from the router through a miner tunnel and back.",
  "Miners dial out to the router, so a GPU box behind NAT needs no public address. Each request is multiplexed over one long-lived tunnel and answered token by token.",
  "Validators send small probes that look exactly like user traffic, measure latency and read the usage ledger, then set weights on chain in proportion to real work.",
  "Token counts come from a real tokenizer, so the usage you see in the ledger for this demo model matches what was streamed to you, chunk for chunk.",
];

/** Delay between demo tokens. */
export const DEFAULT_TOKEN_DELAY_MS = 15;
/** Tokens in a demo answer when `max_tokens` allows. */
export const DEFAULT_ANSWER_TOKENS = 48;
/** Context window the demo model advertises. */
export const DEFAULT_CONTEXT_LENGTH = 8192;

/** Settings of the demo backend. */
export interface DemoBackendOptions {
  /** Delay between tokens in ms. Default {@link DEFAULT_TOKEN_DELAY_MS}. */
  readonly tokenDelayMs?: number;
  /** Tokens in an answer when `max_tokens` allows. Default {@link DEFAULT_ANSWER_TOKENS}. */
  readonly answerTokens?: number;
  /** Context window advertised. Default {@link DEFAULT_CONTEXT_LENGTH}. */
  readonly contextLength?: number;
}

function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
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

/** The deterministic token texts the demo streams for a prompt (before `max_tokens`). */
export function demoAnswerTokens(prompt: string, answerTokens: number): string[] {
  const tokens: string[] = [];
  let i = hash32(prompt) % PASSAGES.length;
  while (tokens.length < answerTokens) {
    const passage = tokens.length === 0 ? (PASSAGES[i] as string) : ` ${PASSAGES[i] as string}`;
    for (const t of encode(passage)) tokens.push(decode([t]));
    i = (i + 1) % PASSAGES.length;
  }
  return tokens.slice(0, answerTokens);
}

/** The demo backend. */
export class DemoBackend implements Backend {
  readonly description = `built-in demo model "${DEMO_MODEL_ID}" (not a real LLM)`;
  readonly #delayMs: number;
  readonly #answerTokens: number;
  readonly #contextLength: number;

  constructor(opts: DemoBackendOptions = {}) {
    this.#delayMs = opts.tokenDelayMs ?? DEFAULT_TOKEN_DELAY_MS;
    this.#answerTokens = opts.answerTokens ?? DEFAULT_ANSWER_TOKENS;
    this.#contextLength = opts.contextLength ?? DEFAULT_CONTEXT_LENGTH;
  }

  async listModels(): Promise<DiscoveredModel[]> {
    return [{ id: DEMO_MODEL_ID, contextLength: this.#contextLength }];
  }

  async *chat(model: string, chat: ChatRequest, signal: StopSignal): AsyncGenerator<BackendEvent> {
    if (model !== DEMO_MODEL_ID) {
      throw new BackendFailure(
        RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE,
        `the demo serves only ${DEMO_MODEL_ID}`,
      );
    }
    const prompt = chat.messages.map((m) => m.content ?? "").join("\n");
    const limit = chat.maxTokens ?? this.#answerTokens;
    const tokens = demoAnswerTokens(prompt, Math.min(limit, this.#answerTokens));
    const promptTokens = countPromptTokens(chat);
    for (let i = 0; i < tokens.length; i++) {
      if (this.#delayMs > 0) await sleep(this.#delayMs, signal);
      else if (signal.aborted) throw signal.reason;
      const last = i === tokens.length - 1;
      const finish = !last
        ? FinishReason.FINISH_REASON_UNSPECIFIED
        : limit < this.#answerTokens
          ? FinishReason.FINISH_REASON_LENGTH
          : FinishReason.FINISH_REASON_STOP;
      yield {
        type: "delta",
        content: tokens[i] as string,
        reasoning: "",
        toolCalls: [],
        finishReason: finish,
      };
    }
    if (tokens.length === 0) {
      const finish =
        limit < this.#answerTokens ? FinishReason.FINISH_REASON_LENGTH : FinishReason.FINISH_REASON_STOP;
      yield { type: "delta", content: "", reasoning: "", toolCalls: [], finishReason: finish };
    }
    yield { type: "usage", promptTokens, completionTokens: tokens.length };
  }
}
