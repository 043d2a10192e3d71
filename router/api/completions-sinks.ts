/**
 * Where a completions answer goes: one `text_completion` JSON body, or SSE
 * events of the same object (OpenAI's legacy stream shape), then `[DONE]`.
 * Both implement the chat endpoint's ChatSink contract, so headers go out
 * lazily (a failure before output is still a plain HTTP error) and a stream
 * that fails after output ends with one error event and no `[DONE]`.
 */
import type { ServerResponse } from "node:http";
import { boundedLogprob } from "../../common/chunk-logprobs.js";
import type { TensorClawError } from "../../common/errors.js";
import type { TokenLogprob } from "../../gen/tensorclaw/v1/chat.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import type { ClampedUsage } from "../usage/clamp.js";
import type { ChatSink } from "./chat-sinks.js";
import { errorEventJson, sendError, sendJson } from "./http.js";
import { finishReasonText } from "./openai-response.js";
import { SseWriter } from "./sse.js";

/** The answer's identity, the same on every event. */
export interface CompletionIdentity {
  readonly id: string;
  readonly created: number;
  /** The model named in the answer (ChatSink.serving may change it before the first chunk). */
  model: string;
}

/** OpenAI's legacy per-choice logprobs. */
export interface LegacyLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Record<string, number>[];
  text_offset: number[];
}

/**
 * The legacy logprobs of a chunk's tokens, `offset` being where the chunk's
 * text starts in its choice (characters, as OpenAI counts). At most `top`
 * alternatives per token are shown; values are bounded (the miner's word).
 */
export function legacyLogprobs(
  entries: readonly TokenLogprob[],
  offset: number,
  top: number,
): LegacyLogprobs {
  const out: LegacyLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const e of entries) {
    out.tokens.push(e.token);
    out.token_logprobs.push(boundedLogprob(e.logprob));
    const alts: Record<string, number> = {};
    for (const t of e.topLogprobs.slice(0, top)) alts[t.token] = boundedLogprob(t.logprob);
    out.top_logprobs.push(alts);
    out.text_offset.push(at);
    at += e.token.length;
  }
  return out;
}

/** Per-choice state shared by both sinks. */
class Choices {
  readonly text: string[];
  readonly finish: (string | null)[];
  readonly logprobs: (LegacyLogprobs | null)[];

  constructor(
    count: number,
    /** `logprobs` asked for (alternatives per token), or undefined for none. */
    readonly top: number | undefined,
  ) {
    this.text = new Array(count).fill("");
    this.finish = new Array(count).fill(null);
    this.logprobs = new Array(count).fill(null);
  }

  /** Takes a chunk in; returns its legacy logprobs (null when not asked for). */
  add(c: ResponseChunk): LegacyLogprobs | null {
    const i = c.choiceIndex;
    const lp =
      this.top === undefined ? null : legacyLogprobs(c.logprobs, (this.text[i] ?? "").length, this.top);
    this.text[i] += c.contentDelta;
    const reason = finishReasonText(c.finishReason);
    if (reason !== undefined && reason !== null) this.finish[i] = reason;
    if (lp !== null) {
      const all = this.logprobs[i] ?? { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
      all.tokens.push(...lp.tokens);
      all.token_logprobs.push(...lp.token_logprobs);
      all.top_logprobs.push(...lp.top_logprobs);
      all.text_offset.push(...lp.text_offset);
      this.logprobs[i] = all;
    }
    return lp;
  }
}

function usageJson(u: ClampedUsage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

/** Collects the answer into one `text_completion` body. */
export class CompletionJsonSink implements ChatSink {
  chunks = 0;
  readonly #choices: Choices;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly ident: CompletionIdentity,
    choices: number,
    top: number | undefined,
  ) {
    this.#choices = new Choices(choices, top);
  }

  get gone(): boolean {
    return this.res.destroyed;
  }

  begin(): void {}

  serving(model: string): void {
    this.ident.model = model;
  }

  chunk(chunk: ResponseChunk): boolean {
    this.chunks++;
    this.#choices.add(chunk);
    return !this.gone;
  }

  settle(): void {}

  complete(usage: () => ClampedUsage): number {
    const c = this.#choices;
    sendJson(
      this.res,
      200,
      {
        id: this.ident.id,
        object: "text_completion",
        created: this.ident.created,
        model: this.ident.model,
        choices: c.text.map((text, index) => ({
          index,
          text,
          logprobs: c.logprobs[index] ?? null,
          finish_reason: c.finish[index] ?? "stop",
        })),
        usage: usageJson(usage()),
      },
      this.requestId,
    );
    return 200;
  }

  fail(error: TensorClawError): number {
    return sendError(this.res, error, this.requestId);
  }
}

/** Streams `text_completion` events, one per chunk, then usage (when asked) and `[DONE]`. */
export class CompletionSseSink implements ChatSink {
  chunks = 0;
  readonly #sse: SseWriter;
  readonly #choices: Choices;

  constructor(
    private readonly res: ServerResponse,
    private readonly requestId: string,
    private readonly ident: CompletionIdentity,
    choices: number,
    top: number | undefined,
    private readonly includeUsage: boolean,
    keepAliveMs: number,
  ) {
    this.#sse = new SseWriter(res, requestId, keepAliveMs);
    this.#choices = new Choices(choices, top);
  }

  get gone(): boolean {
    return this.#sse.gone;
  }

  begin(): void {
    this.#sse.startKeepAlive();
  }

  serving(model: string): void {
    this.ident.model = model;
  }

  chunk(chunk: ResponseChunk): Promise<boolean> {
    this.chunks++;
    this.#sse.stopKeepAlive();
    const logprobs = this.#choices.add(chunk);
    const event = {
      id: this.ident.id,
      object: "text_completion",
      created: this.ident.created,
      model: this.ident.model,
      choices: [
        {
          index: chunk.choiceIndex,
          text: chunk.contentDelta,
          logprobs,
          finish_reason: finishReasonText(chunk.finishReason) ?? null,
        },
      ],
      ...(this.includeUsage ? { usage: null } : {}),
    };
    return this.#sse.data(JSON.stringify(event));
  }

  settle(): void {
    this.#sse.stopKeepAlive();
  }

  async complete(usage: () => ClampedUsage): Promise<number> {
    if (this.includeUsage) {
      await this.#sse.data(
        JSON.stringify({
          id: this.ident.id,
          object: "text_completion",
          created: this.ident.created,
          model: this.ident.model,
          choices: [],
          usage: usageJson(usage()),
        }),
      );
    }
    this.#sse.done();
    return 200;
  }

  fail(error: TensorClawError): number {
    if (this.#sse.started) {
      this.#sse.fail(errorEventJson(error));
      return 200;
    }
    return sendError(this.res, error, this.requestId);
  }
}
