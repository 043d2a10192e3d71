/**
 * The logprobs of an answer as OpenAI shows them
 * (`choices[].logprobs.content[]`): each token with its log-probability, its
 * UTF-8 bytes and its most likely alternatives.
 *
 * What miners send is bounded per chunk by the tunnel (see
 * common/chunk-logprobs.ts); this relay bounds it per request as well,
 * silently dropping what no honest backend sends: entries past the
 * completion ceiling of their choice (one entry per generated token), alternatives past the `top_logprobs`
 * asked for, and log-probabilities outside [-9999, 0]. Dropping rather than
 * failing keeps the user's answer intact when a backend is merely generous.
 */
import { boundedLogprob } from "../../common/chunk-logprobs.js";
import type { ChatRequest, TokenLogprob } from "../../gen/tensorclaw/v1/chat.js";

/** What a caller asked for, when it asked for logprobs. */
export interface LogprobsAsk {
  /** Alternatives shown per token (`top_logprobs`, 0 to 20). */
  readonly top: number;
  /** Entries shown per choice: the request's completion ceiling (chat-ceiling.ts). */
  readonly maxEntries: number;
}

/** One alternative, OpenAI's `top_logprobs[]` item. */
export interface OpenAITopLogprob {
  readonly token: string;
  readonly logprob: number;
  /** The token's UTF-8 bytes. */
  readonly bytes: number[];
}

/** One token, OpenAI's `logprobs.content[]` item. */
export interface OpenAITokenLogprob extends OpenAITopLogprob {
  readonly top_logprobs: OpenAITopLogprob[];
}

/** OpenAI's `choices[].logprobs` object. */
export interface OpenAIChoiceLogprobs {
  readonly content: OpenAITokenLogprob[];
  readonly refusal: null;
}

/**
 * The caller's ask, or undefined when it did not set `logprobs: true`;
 * `ceiling` is the most entries one choice shows (one per token).
 */
export function logprobsAsk(chat: ChatRequest, ceiling: number): LogprobsAsk | undefined {
  if (chat.logprobs !== true) return undefined;
  return { top: chat.topLogprobs ?? 0, maxEntries: ceiling };
}

function utf8Bytes(token: string): number[] {
  return token === "" ? [] : Array.from(Buffer.from(token, "utf8"));
}

function alternative(t: { readonly token: string; readonly logprob: number }): OpenAITopLogprob {
  return { token: t.token, logprob: boundedLogprob(t.logprob), bytes: utf8Bytes(t.token) };
}

/** Shapes one request's logprobs, chunk after chunk, within its {@link LogprobsAsk}. */
export class LogprobsRelay {
  readonly #ask: LogprobsAsk;
  #shown = 0;

  constructor(ask: LogprobsAsk) {
    this.#ask = ask;
  }

  /** The OpenAI items for one chunk's entries (fewer once `maxEntries` is reached). */
  take(entries: readonly TokenLogprob[]): OpenAITokenLogprob[] {
    const room = Math.min(entries.length, this.#ask.maxEntries - this.#shown);
    if (room <= 0) return [];
    this.#shown += room;
    const out: OpenAITokenLogprob[] = new Array(room);
    for (let i = 0; i < room; i++) {
      const e = entries[i] as TokenLogprob;
      const top =
        e.topLogprobs.length > this.#ask.top ? e.topLogprobs.slice(0, this.#ask.top) : e.topLogprobs;
      const a = alternative(e);
      out[i] = { token: a.token, logprob: a.logprob, bytes: a.bytes, top_logprobs: top.map(alternative) };
    }
    return out;
  }
}
