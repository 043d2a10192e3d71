import { boundedFingerprint } from "../../common/chunk-fingerprint.js";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import {
  type LogprobsAsk,
  LogprobsRelay,
  type OpenAIChoiceLogprobs,
  type OpenAITokenLogprob,
} from "./openai-logprobs.js";

/** OpenAI `usage` object. */
export interface OpenAIUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** The OpenAI `finish_reason` text for a proto FinishReason; null while unfinished. */
export function finishReasonText(
  fr: FinishReason,
): "stop" | "length" | "tool_calls" | "content_filter" | null {
  switch (fr) {
    case FinishReason.FINISH_REASON_STOP:
      return "stop";
    case FinishReason.FINISH_REASON_LENGTH:
      return "length";
    case FinishReason.FINISH_REASON_TOOL_CALLS:
      return "tool_calls";
    case FinishReason.FINISH_REASON_CONTENT_FILTER:
      return "content_filter";
    default:
      return null;
  }
}

/** Builds the OpenAI usage object. */
export function openaiUsage(promptTokens: number, completionTokens: number): OpenAIUsage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/** Identity shared by every chunk of one completion. */
export interface CompletionIdentity {
  /** `chatcmpl-...`. */
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  /** The model served. */
  readonly model: string;
}

type JsonDelta = Record<string, unknown>;

function toolCallDeltas(chunk: ResponseChunk): JsonDelta[] {
  return chunk.toolCalls.map((tc) => {
    const fn: JsonDelta = { arguments: tc.argumentsDelta };
    if (tc.functionName !== "") fn.name = tc.functionName;
    const d: JsonDelta = { index: tc.index };
    if (tc.id !== "") d.id = tc.id;
    if (tc.type !== "" || tc.id !== "") d.type = tc.type === "" ? "function" : tc.type;
    d.function = fn;
    return d;
  });
}

/**
 * Shapes a stream of ResponseChunks into `chat.completion.chunk` JSON texts.
 * Each chunk is one choice's (`index` is its `choice_index`), and the first
 * chunk of each choice carries `role: "assistant"`. `system_fingerprint` is
 * null until a chunk brings one (at most 128 bytes), then the first one on
 * every later chunk. With `includeUsage`, every chunk has `usage: null` and
 * the last one (see `usageChunk`) has `choices: []` and the usage. With
 * `logprobs` (the caller asked for them), a chunk whose tokens came with
 * logprobs carries `logprobs: {content: [...], refusal: null}`; every other
 * chunk, and every chunk of a caller that did not ask, has `logprobs: null`.
 */
export class ChunkShaper {
  /** Choices that already had their first chunk. */
  private readonly started = new Set<number>();
  private readonly logprobs: Map<number, LogprobsRelay> | undefined;
  private fingerprint: string | null = null;
  /** `{"id":…,"model":…,"system_fingerprint":…,"choices":` — the same for every chunk, built once it is known. */
  private head: string;
  private readonly tail: string;

  constructor(
    private readonly ident: CompletionIdentity,
    includeUsage: boolean,
    private readonly logprobsAsk?: LogprobsAsk,
  ) {
    this.logprobs = logprobsAsk === undefined ? undefined : new Map();
    this.head = this.buildHead();
    this.tail = includeUsage ? ',"usage":null}' : "}";
  }

  private buildHead(): string {
    const h = JSON.stringify({
      id: this.ident.id,
      object: "chat.completion.chunk",
      created: this.ident.created,
      model: this.ident.model,
      system_fingerprint: this.fingerprint,
    });
    return `${h.slice(0, -1)},"choices":`;
  }

  /** JSON text of one chunk. */
  chunk(chunk: ResponseChunk): string {
    if (this.fingerprint === null && chunk.systemFingerprint !== "") {
      const fp = boundedFingerprint(chunk.systemFingerprint);
      if (fp !== "") {
        this.fingerprint = fp;
        this.head = this.buildHead();
      }
    }
    const index = chunk.choiceIndex;
    const delta: JsonDelta = {};
    if (!this.started.has(index)) {
      delta.role = "assistant";
      this.started.add(index);
    }
    if (chunk.contentDelta !== "" || (delta.role !== undefined && chunk.toolCalls.length === 0)) {
      delta.content = chunk.contentDelta;
    }
    if (chunk.reasoningDelta !== "") delta.reasoning_content = chunk.reasoningDelta;
    if (chunk.toolCalls.length > 0) delta.tool_calls = toolCallDeltas(chunk);
    let logprobs: OpenAIChoiceLogprobs | null = null;
    if (this.logprobs !== undefined && chunk.logprobs.length > 0) {
      const content = relayOf(this.logprobs, index, this.logprobsAsk).take(chunk.logprobs);
      if (content.length > 0) logprobs = { content, refusal: null };
    }
    const choice = { index, delta, logprobs, finish_reason: finishReasonText(chunk.finishReason) };
    return `${this.head}[${JSON.stringify(choice)}]${this.tail}`;
  }

  /** JSON text of the final usage chunk (`choices: []`). */
  usageChunk(usage: OpenAIUsage): string {
    return JSON.stringify({
      id: this.ident.id,
      object: "chat.completion.chunk",
      created: this.ident.created,
      model: this.ident.model,
      system_fingerprint: this.fingerprint,
      choices: [],
      usage,
    });
  }
}

/** The logprobs relay of one choice (each choice is bounded on its own). */
function relayOf(
  relays: Map<number, LogprobsRelay>,
  index: number,
  ask: LogprobsAsk | undefined,
): LogprobsRelay {
  let r = relays.get(index);
  if (r === undefined) {
    r = new LogprobsRelay(ask as LogprobsAsk);
    relays.set(index, r);
  }
  return r;
}

interface ToolCallAcc {
  id: string;
  type: string;
  name: string;
  args: string;
}

/** One choice of a non-streaming answer, as its chunks arrive. */
class ChoiceAcc {
  content = "";
  reasoning = "";
  readonly tokens: OpenAITokenLogprob[] = [];
  readonly calls = new Map<number, ToolCallAcc>();
  finish: FinishReason = FinishReason.FINISH_REASON_UNSPECIFIED;
  readonly logprobs: LogprobsRelay | undefined;

  constructor(ask: LogprobsAsk | undefined) {
    this.logprobs = ask === undefined ? undefined : new LogprobsRelay(ask);
  }

  add(chunk: ResponseChunk): void {
    if (this.logprobs !== undefined && chunk.logprobs.length > 0) {
      for (const t of this.logprobs.take(chunk.logprobs)) this.tokens.push(t);
    }
    this.content += chunk.contentDelta;
    this.reasoning += chunk.reasoningDelta;
    for (const tc of chunk.toolCalls) {
      let acc = this.calls.get(tc.index);
      if (acc === undefined) {
        acc = { id: "", type: "function", name: "", args: "" };
        this.calls.set(tc.index, acc);
      }
      if (tc.id !== "") acc.id = tc.id;
      if (tc.type !== "") acc.type = tc.type;
      if (tc.functionName !== "") acc.name += tc.functionName;
      acc.args += tc.argumentsDelta;
    }
    if (chunk.finishReason !== FinishReason.FINISH_REASON_UNSPECIFIED) this.finish = chunk.finishReason;
  }

  /** The OpenAI choice; one that ended without a finish reason reports "stop", or "tool_calls". */
  choice(index: number): Record<string, unknown> {
    const toolCalls = [...this.calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([, c]) => ({ id: c.id, type: c.type, function: { name: c.name, arguments: c.args } }));
    const message: Record<string, unknown> = {
      role: "assistant",
      content: this.content === "" && toolCalls.length > 0 ? null : this.content,
      refusal: null,
    };
    if (this.reasoning !== "") message.reasoning_content = this.reasoning;
    if (toolCalls.length > 0) message.tool_calls = toolCalls;
    const finish = finishReasonText(this.finish) ?? (toolCalls.length > 0 ? "tool_calls" : "stop");
    const logprobs: OpenAIChoiceLogprobs | null =
      this.logprobs === undefined ? null : { content: this.tokens, refusal: null };
    return { index, message, logprobs, finish_reason: finish };
  }
}

/**
 * Collects ResponseChunks into one non-streaming `chat.completion` with
 * `choices` choices (the request's `n`), each from the chunks of its
 * `choice_index`. With `logprobs` (the caller asked for them) each choice
 * carries `logprobs: {content: [every token's item], refusal: null}`, else
 * `null`. `system_fingerprint` is the first one a chunk brought (within 128
 * bytes), else null.
 */
export class CompletionAggregator {
  private readonly acc: ChoiceAcc[] = [];
  private fingerprint: string | null = null;
  /** Number of chunks seen. */
  chunks = 0;

  constructor(
    private readonly logprobs?: LogprobsAsk,
    private readonly choices = 1,
  ) {}

  /** Adds one chunk. */
  add(chunk: ResponseChunk): void {
    this.chunks++;
    if (this.fingerprint === null && chunk.systemFingerprint !== "") {
      const fp = boundedFingerprint(chunk.systemFingerprint);
      if (fp !== "") this.fingerprint = fp;
    }
    let acc = this.acc[chunk.choiceIndex];
    if (acc === undefined) {
      acc = new ChoiceAcc(this.logprobs);
      this.acc[chunk.choiceIndex] = acc;
    }
    acc.add(chunk);
  }

  /** The `chat.completion` object. A choice no chunk spoke for is empty, ended "stop". */
  completion(ident: CompletionIdentity, usage: OpenAIUsage): Record<string, unknown> {
    const choices: Record<string, unknown>[] = [];
    const n = Math.max(this.choices, this.acc.length);
    for (let i = 0; i < n; i++) choices.push((this.acc[i] ?? new ChoiceAcc(this.logprobs)).choice(i));
    return {
      id: ident.id,
      object: "chat.completion",
      created: ident.created,
      model: ident.model,
      system_fingerprint: this.fingerprint,
      choices,
      usage,
    };
  }
}
