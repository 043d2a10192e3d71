/**
 * Where a `/v1/responses` answer goes while the chat relay runs (see
 * chat-sinks.ts for the contract): one `response` object at the end, or
 * the Responses API's typed server-sent events. Shapes follow the `openai`
 * package's types (`Response`, `ResponseStreamEvent`).
 *
 * The events of a streamed answer: `response.created` and
 * `response.in_progress`, `response.output_item.added` and
 * `response.content_part.added` (all four once the first chunk arrives, so
 * a failure before any output is still a plain HTTP error), a
 * `response.output_text.delta` per piece of text, then
 * `response.output_text.done`, `response.content_part.done`,
 * `response.output_item.done` and `response.completed` (or
 * `response.incomplete` when the answer was cut by `max_output_tokens`).
 * A failure after output ends the stream with `response.failed`. Every
 * event has `event:` and `data:` lines and a `sequence_number`.
 */
import type { ServerResponse } from "node:http";
import { type TensorClawError, toHttpError } from "../../common/errors.js";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import type { ClampedUsage } from "../usage/clamp.js";
import type { ChatSink } from "./chat-sinks.js";
import { sendError, sendJson } from "./http.js";
import type { ResponsesEcho } from "./responses-request.js";
import { SseWriter } from "./sse.js";

/** What every response object of one request shares. */
export interface ResponsesIdentity {
  /** The router's request id: the response is `resp_<it>`, its message `msg_<it>`. */
  readonly requestId: string;
  /** Unix seconds. */
  readonly createdAt: number;
  readonly model: string;
  readonly echo: ResponsesEcho;
}

type Json = Record<string, unknown>;
type Status = "in_progress" | "completed" | "incomplete" | "failed";

function outputText(text: string): Json {
  return { type: "output_text", text, annotations: [], logprobs: [] };
}

function message(
  ident: ResponsesIdentity,
  text: string,
  status: "in_progress" | "completed" | "incomplete",
): Json {
  return {
    id: `msg_${ident.requestId}`,
    type: "message",
    status,
    role: "assistant",
    content: status === "in_progress" ? [] : [outputText(text)],
  };
}

/** Why an answer is incomplete, or null for one that ended on its own. */
function incompleteReason(finish: FinishReason): string | null {
  if (finish === FinishReason.FINISH_REASON_LENGTH) return "max_output_tokens";
  if (finish === FinishReason.FINISH_REASON_CONTENT_FILTER) return "content_filter";
  return null;
}

/** The `response` object at a given moment of the request. */
export function responseObject(
  ident: ResponsesIdentity,
  status: Status,
  output: readonly Json[],
  usage: ClampedUsage | null,
  extra: { readonly incomplete?: string | null; readonly error?: TensorClawError } = {},
): Json {
  const e = ident.echo;
  const text = output
    .map((o) => ((o.content as Json[] | undefined)?.[0]?.text as string | undefined) ?? "")
    .join("");
  return {
    id: `resp_${ident.requestId}`,
    object: "response",
    created_at: ident.createdAt,
    status,
    background: false,
    error:
      extra.error === undefined
        ? null
        : { code: "server_error", message: toHttpError(extra.error).body.error.message },
    incomplete_details: extra.incomplete == null ? null : { reason: extra.incomplete },
    instructions: e.instructions,
    max_output_tokens: e.maxOutputTokens,
    metadata: e.metadata,
    model: ident.model,
    output,
    output_text: text,
    parallel_tool_calls: false,
    previous_response_id: null,
    reasoning: { effort: null, summary: null },
    store: false,
    temperature: e.temperature,
    text: { format: e.textFormat },
    tool_choice: "none",
    tools: [],
    top_p: e.topP,
    truncation: "disabled",
    user: e.user,
    usage:
      usage === null
        ? null
        : {
            input_tokens: usage.promptTokens,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: usage.completionTokens,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: usage.promptTokens + usage.completionTokens,
          },
  };
}

/** The answer's text and how it ended, as chunks arrive (only choice 0 exists: `n` is 1). */
class TextAcc {
  text = "";
  finish: FinishReason = FinishReason.FINISH_REASON_UNSPECIFIED;
  chunks = 0;

  add(chunk: ResponseChunk): void {
    this.chunks++;
    this.text += chunk.contentDelta;
    if (chunk.finishReason !== FinishReason.FINISH_REASON_UNSPECIFIED) this.finish = chunk.finishReason;
  }
}

/** Collects the answer into one `response` object. */
export class ResponsesJsonSink implements ChatSink {
  readonly #acc = new TextAcc();

  constructor(
    private readonly res: ServerResponse,
    private ident: ResponsesIdentity,
  ) {}

  serving(model: string): void {
    if (this.chunks === 0) this.ident = { ...this.ident, model };
  }

  get chunks(): number {
    return this.#acc.chunks;
  }

  get gone(): boolean {
    return this.res.destroyed;
  }

  begin(): void {}

  chunk(chunk: ResponseChunk): boolean {
    this.#acc.add(chunk);
    return true;
  }

  settle(): void {}

  complete(usage: () => ClampedUsage): number {
    const incomplete = incompleteReason(this.#acc.finish);
    const status = incomplete === null ? "completed" : "incomplete";
    const out = [message(this.ident, this.#acc.text, status)];
    sendJson(
      this.res,
      200,
      responseObject(this.ident, status, out, usage(), { incomplete }),
      this.ident.requestId,
    );
    return 200;
  }

  fail(error: TensorClawError): number {
    return sendError(this.res, error, this.ident.requestId);
  }
}

/** Streams the answer as the Responses API's typed events. */
export class ResponsesSseSink implements ChatSink {
  readonly #sse: SseWriter;
  readonly #acc = new TextAcc();
  #seq = 0;

  constructor(
    private readonly res: ServerResponse,
    private ident: ResponsesIdentity,
    keepAliveMs: number,
  ) {
    this.#sse = new SseWriter(res, ident.requestId, keepAliveMs);
  }

  /** A `models` fallback moved on: later events name the model that answers. */
  serving(model: string): void {
    if (this.chunks === 0) this.ident = { ...this.ident, model };
  }

  get chunks(): number {
    return this.#acc.chunks;
  }

  get gone(): boolean {
    return this.#sse.gone;
  }

  begin(): void {
    this.#sse.startKeepAlive();
  }

  #event(type: string, fields: Json): Promise<boolean> {
    return this.#sse.data(JSON.stringify({ type, sequence_number: this.#seq++, ...fields }), type);
  }

  /** An event about the one content part, with its own fields after the part's (spread last: see STYLE.md). */
  #part(fields: Json): Json {
    return { item_id: `msg_${this.ident.requestId}`, output_index: 0, content_index: 0, ...fields };
  }

  async chunk(chunk: ResponseChunk): Promise<boolean> {
    this.#sse.stopKeepAlive();
    if (this.#acc.chunks === 0) {
      const response = responseObject(this.ident, "in_progress", [], null);
      await this.#event("response.created", { response });
      await this.#event("response.in_progress", { response });
      await this.#event("response.output_item.added", {
        output_index: 0,
        item: message(this.ident, "", "in_progress"),
      });
      await this.#event("response.content_part.added", this.#part({ part: outputText("") }));
    }
    this.#acc.add(chunk);
    if (chunk.contentDelta === "") return !this.#sse.gone;
    return this.#event("response.output_text.delta", this.#part({ delta: chunk.contentDelta, logprobs: [] }));
  }

  settle(): void {
    this.#sse.stopKeepAlive();
  }

  async complete(usage: () => ClampedUsage): Promise<number> {
    if (this.#acc.chunks === 0) await this.chunk({ ...emptyChunk });
    const text = this.#acc.text;
    const incomplete = incompleteReason(this.#acc.finish);
    const status = incomplete === null ? "completed" : "incomplete";
    await this.#event("response.output_text.done", this.#part({ text, logprobs: [] }));
    await this.#event("response.content_part.done", this.#part({ part: outputText(text) }));
    const item = message(this.ident, text, status);
    await this.#event("response.output_item.done", { output_index: 0, item });
    const response = responseObject(this.ident, status, [item], usage(), { incomplete });
    await this.#event(incomplete === null ? "response.completed" : "response.incomplete", { response });
    this.#sse.close();
    return 200;
  }

  fail(error: TensorClawError): number {
    if (!this.#sse.started) return sendError(this.res, error, this.ident.requestId);
    const item = message(this.ident, this.#acc.text, "incomplete");
    const response = responseObject(this.ident, "failed", [item], null, { error });
    this.#sse.fail(
      JSON.stringify({ type: "response.failed", sequence_number: this.#seq++, response }),
      "response.failed",
    );
    return 200;
  }
}

const emptyChunk: ResponseChunk = {
  requestId: 0,
  contentDelta: "",
  toolCalls: [],
  finishReason: FinishReason.FINISH_REASON_UNSPECIFIED,
  choiceIndex: 0,
  systemFingerprint: "",
  embeddings: [],
  reasoningDelta: "",
  logprobs: [],
};
