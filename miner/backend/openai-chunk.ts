/**
 * Maps OpenAI `chat.completion.chunk` objects (and whole non-streaming
 * `chat.completion` bodies, for backends that ignore `stream: true`) to
 * BackendEvents. Backends differ in the details — `reasoning_content`
 * (vLLM, DeepSeek) or `reasoning` (Ollama, OpenRouter), `usage` on the last
 * content chunk or on an extra one with no choices, `null` for absent fields
 * — so every field is read defensively. Every choice the request asked for
 * (`n`) is relayed with its `index`; a choice past them is dropped (the
 * router would fail the request over it). Logprobs are read only when the request
 * asked for them (`want`, see openai-logprobs.ts), and a delta with more of
 * them than one tunnel chunk may carry comes out as several events.
 */
import { FinishReason, type TokenLogprob, type ToolCallDelta } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { type BackendEvent, BackendFailure } from "./backend.js";
import { type DeltaEvent, type LogprobsWant, logprobsOf, splitDelta } from "./openai-logprobs.js";

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function count(v: unknown): number | undefined {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/** OpenAI's `finish_reason` text as a FinishReason (unknown non-null reasons count as STOP). */
export function finishReasonOf(v: unknown): FinishReason {
  switch (v) {
    case null:
    case undefined:
    case "":
      return FinishReason.FINISH_REASON_UNSPECIFIED;
    case "length":
      return FinishReason.FINISH_REASON_LENGTH;
    case "tool_calls":
    case "function_call":
      return FinishReason.FINISH_REASON_TOOL_CALLS;
    case "content_filter":
      return FinishReason.FINISH_REASON_CONTENT_FILTER;
    default:
      // "stop", "eos", "stop_sequence", ...: the model ended on its own.
      return FinishReason.FINISH_REASON_STOP;
  }
}

function toolCallDeltas(v: unknown): ToolCallDelta[] {
  if (!Array.isArray(v)) return [];
  const out: ToolCallDelta[] = [];
  for (let i = 0; i < v.length; i++) {
    const t = obj(v[i]);
    if (t === undefined) continue;
    const fn = obj(t.function);
    const index = count(t.index) ?? i;
    out.push({
      index: Math.min(index, 0xffffffff),
      id: str(t.id),
      type: str(t.type),
      functionName: str(fn?.name),
      argumentsDelta: str(fn?.arguments),
    });
  }
  return out;
}

function usageEvent(v: unknown): BackendEvent | undefined {
  const u = obj(v);
  if (u === undefined) return undefined;
  const prompt = count(u.prompt_tokens);
  const completion = count(u.completion_tokens);
  if (prompt === undefined || completion === undefined) return undefined;
  return { type: "usage", promptTokens: prompt, completionTokens: completion };
}

function failIfError(doc: Json): void {
  // vLLM and others report failures mid-stream as `data: {"error": {...}}`.
  if (doc.error !== undefined && doc.error !== null) {
    const e = obj(doc.error);
    const detail = str(e?.message) || str(doc.error);
    throw new BackendFailure(
      RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
      "the backend reported an error mid-stream",
      { cause: new Error(detail) },
    );
  }
}

/** A delta event, with `logprobs` only when there are some, split to the tunnel's per-chunk limit. */
function deltaEvents(
  delta: Omit<DeltaEvent, "type" | "logprobs" | "choiceIndex" | "systemFingerprint">,
  logprobs: TokenLogprob[],
  choiceIndex: number,
  fingerprint: string,
): DeltaEvent[] {
  const ev: DeltaEvent = {
    type: "delta",
    ...delta,
    // Only what is there: choice 0 and "no fingerprint" are the defaults.
    ...(choiceIndex === 0 ? {} : { choiceIndex }),
    ...(fingerprint === "" ? {} : { systemFingerprint: fingerprint }),
  };
  return logprobs.length === 0 ? [ev] : splitDelta({ ...ev, logprobs });
}

/** The choice's index when it is one of the `choices` asked for, else undefined. */
function choiceIndexOf(choice: Json, position: number, choices: number): number | undefined {
  const index = choice.index === undefined || choice.index === null ? position : count(choice.index);
  return index !== undefined && index < choices ? index : undefined;
}

/**
 * Events carried by one parsed streaming chunk; `want` says whether (and how
 * many alternatives of) logprobs were asked for, `choices` how many choices
 * (`n`). Throws a BackendFailure on an error chunk or a non-object.
 */
export function eventsFromChunk(doc: unknown, want?: LogprobsWant, choices = 1): BackendEvent[] {
  const d = obj(doc);
  if (d === undefined) {
    throw new BackendFailure(
      RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
      "the backend sent a malformed chunk",
    );
  }
  failIfError(d);
  const out: BackendEvent[] = [];
  const fingerprint = str(d.system_fingerprint);
  const list = Array.isArray(d.choices) ? d.choices : [];
  for (let i = 0; i < list.length; i++) {
    const choice = obj(list[i]);
    if (choice === undefined) continue;
    // A streamed chunk without `index` is read as choice 0, as backends that know only n = 1 send.
    const choiceIndex = choiceIndexOf(choice, 0, choices);
    if (choiceIndex === undefined) continue;
    const delta = obj(choice.delta) ?? {};
    const content = str(delta.content);
    const reasoning = str(delta.reasoning_content) || str(delta.reasoning);
    const toolCalls = toolCallDeltas(delta.tool_calls);
    const finishReason = finishReasonOf(choice.finish_reason);
    const logprobs = logprobsOf(choice.logprobs, want);
    if (
      content !== "" ||
      reasoning !== "" ||
      toolCalls.length > 0 ||
      finishReason !== FinishReason.FINISH_REASON_UNSPECIFIED ||
      logprobs.length > 0
    ) {
      out.push(
        ...deltaEvents({ content, reasoning, toolCalls, finishReason }, logprobs, choiceIndex, fingerprint),
      );
    }
  }
  const usage = usageEvent(d.usage);
  if (usage !== undefined) out.push(usage);
  return out;
}

/**
 * Events equivalent to a whole non-streaming `chat.completion` body, choice
 * after choice (`want` and `choices` as for {@link eventsFromChunk}).
 */
export function eventsFromCompletion(doc: unknown, want?: LogprobsWant, choices = 1): BackendEvent[] {
  const d = obj(doc);
  if (d === undefined) {
    throw new BackendFailure(
      RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
      "the backend sent a malformed completion",
    );
  }
  failIfError(d);
  const fingerprint = str(d.system_fingerprint);
  const list = Array.isArray(d.choices) ? d.choices : [];
  const out: BackendEvent[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < list.length; i++) {
    const choice = obj(list[i]);
    if (choice === undefined) continue;
    // A whole answer's choices may omit `index`: their position says it.
    const choiceIndex = choiceIndexOf(choice, i, choices);
    if (choiceIndex === undefined || seen.has(choiceIndex)) continue;
    seen.add(choiceIndex);
    const message = obj(choice.message) ?? {};
    const calls = Array.isArray(message.tool_calls) ? message.tool_calls : [];
    const toolCalls = toolCallDeltas(calls.map((c, k) => ({ ...(obj(c) ?? {}), index: k })));
    const finish = finishReasonOf(choice.finish_reason);
    out.push(
      ...deltaEvents(
        {
          content: str(message.content),
          reasoning: str(message.reasoning_content) || str(message.reasoning),
          toolCalls,
          finishReason:
            finish === FinishReason.FINISH_REASON_UNSPECIFIED ? FinishReason.FINISH_REASON_STOP : finish,
        },
        logprobsOf(choice.logprobs, want),
        choiceIndex,
        fingerprint,
      ),
    );
  }
  if (out.length === 0) {
    throw new BackendFailure(
      RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
      "the backend sent no choices",
    );
  }
  const usage = usageEvent(d.usage);
  if (usage !== undefined) out.push(usage);
  return out;
}
