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
 * The first chunk carries `role: "assistant"`. With `includeUsage`, every
 * chunk has `usage: null` and the last one (see `usageChunk`) has
 * `choices: []` and the usage. With `logprobs` (the caller asked for them),
 * a chunk whose tokens came with logprobs carries
 * `logprobs: {content: [...], refusal: null}`; every other chunk, and every
 * chunk of a caller that did not ask, has `logprobs: null`.
 */
export class ChunkShaper {
  private first = true;
  private readonly logprobs: LogprobsRelay | undefined;
  /** `{"id":…,"model":…,"system_fingerprint":null,"choices":` — the same for every chunk, built once. */
  private readonly head: string;
  private readonly tail: string;

  constructor(
    private readonly ident: CompletionIdentity,
    includeUsage: boolean,
    logprobs?: LogprobsAsk,
  ) {
    this.logprobs = logprobs === undefined ? undefined : new LogprobsRelay(logprobs);
    const h = JSON.stringify({
      id: ident.id,
      object: "chat.completion.chunk",
      created: ident.created,
      model: ident.model,
      system_fingerprint: null,
    });
    this.head = `${h.slice(0, -1)},"choices":`;
    this.tail = includeUsage ? ',"usage":null}' : "}";
  }

  /** JSON text of one chunk. */
  chunk(chunk: ResponseChunk): string {
    const delta: JsonDelta = {};
    if (this.first) {
      delta.role = "assistant";
      this.first = false;
    }
    if (chunk.contentDelta !== "" || (delta.role !== undefined && chunk.toolCalls.length === 0)) {
      delta.content = chunk.contentDelta;
    }
    if (chunk.reasoningDelta !== "") delta.reasoning_content = chunk.reasoningDelta;
    if (chunk.toolCalls.length > 0) delta.tool_calls = toolCallDeltas(chunk);
    let logprobs: OpenAIChoiceLogprobs | null = null;
    if (this.logprobs !== undefined && chunk.logprobs.length > 0) {
      const content = this.logprobs.take(chunk.logprobs);
      if (content.length > 0) logprobs = { content, refusal: null };
    }
    const choice = { index: 0, delta, logprobs, finish_reason: finishReasonText(chunk.finishReason) };
    return `${this.head}[${JSON.stringify(choice)}]${this.tail}`;
  }

  /** JSON text of the final usage chunk (`choices: []`). */
  usageChunk(usage: OpenAIUsage): string {
    return JSON.stringify({
      id: this.ident.id,
      object: "chat.completion.chunk",
      created: this.ident.created,
      model: this.ident.model,
      system_fingerprint: null,
      choices: [],
      usage,
    });
  }
}

interface ToolCallAcc {
  id: string;
  type: string;
  name: string;
  args: string;
}

/**
 * Collects ResponseChunks into one non-streaming `chat.completion`. With
 * `logprobs` (the caller asked for them) the choice carries
 * `logprobs: {content: [every token's item], refusal: null}`, else `null`.
 */
export class CompletionAggregator {
  private content = "";
  private readonly logprobs: LogprobsRelay | undefined;
  private readonly tokens: OpenAITokenLogprob[] = [];
  private reasoning = "";
  private readonly calls = new Map<number, ToolCallAcc>();
  private finish: FinishReason = FinishReason.FINISH_REASON_UNSPECIFIED;
  /** Number of chunks seen. */
  chunks = 0;

  constructor(logprobs?: LogprobsAsk) {
    this.logprobs = logprobs === undefined ? undefined : new LogprobsRelay(logprobs);
  }

  /** Adds one chunk. */
  add(chunk: ResponseChunk): void {
    this.chunks++;
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

  /**
   * The `chat.completion` object. A stream that ended without a finish reason
   * reports "stop", or "tool_calls" when it made calls.
   */
  completion(ident: CompletionIdentity, usage: OpenAIUsage): Record<string, unknown> {
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
    return {
      id: ident.id,
      object: "chat.completion",
      created: ident.created,
      model: ident.model,
      system_fingerprint: null,
      choices: [{ index: 0, message, logprobs, finish_reason: finish }],
      usage,
    };
  }
}
