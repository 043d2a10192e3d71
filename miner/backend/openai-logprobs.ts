/**
 * Logprobs from an OpenAI-compatible backend (`choices[0].logprobs.content`,
 * streamed or whole) as the tunnel carries them (TokenLogprob), and the
 * split of a delta that carries more of them than one ResponseChunk may
 * (common/chunk-logprobs.ts).
 *
 * Backends are untrusted and differ: `logprobs` may be null or missing,
 * `bytes` is often null, and some send logprobs nobody asked for. So every
 * entry is read on its own: one that is malformed (token not a string,
 * logprob not a number) is skipped, values are bounded to [-9999, 0], and
 * nothing is kept unless the request asked for logprobs (they would only
 * cost the tunnel credit).
 */
import { boundedLogprob, MAX_LOGPROBS_PER_CHUNK, MAX_TOP_LOGPROBS } from "../../common/chunk-logprobs.js";
import { FinishReason, type TokenLogprob, type TopLogprob } from "../../gen/tensorclaw/v1/chat.js";
import type { BackendEvent } from "./backend.js";

/** What the backend was asked for, when it was asked for logprobs. */
export interface LogprobsWant {
  /** Alternatives kept per token (0 to 20). */
  readonly top: number;
}

/** A delta event (the only kind that carries logprobs). */
export type DeltaEvent = Extract<BackendEvent, { type: "delta" }>;

type Json = Record<string, unknown>;

function obj(v: unknown): Json | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

/**
 * What the backend request body (as sent, after `extra_json` was merged)
 * asks for: undefined unless `logprobs` is true.
 */
export function logprobsWant(body: Readonly<Json>): LogprobsWant | undefined {
  if (body.logprobs !== true) return undefined;
  const top = body.top_logprobs;
  const n = typeof top === "number" && Number.isInteger(top) ? top : 0;
  return { top: Math.max(0, Math.min(n, MAX_TOP_LOGPROBS)) };
}

function alternative(v: unknown): TopLogprob | undefined {
  const t = obj(v);
  if (t === undefined || typeof t.token !== "string") return undefined;
  // JSON numbers are always finite; the check also refuses strings and nulls.
  if (typeof t.logprob !== "number" || !Number.isFinite(t.logprob)) return undefined;
  return { token: t.token, logprob: boundedLogprob(t.logprob) };
}

/**
 * The TokenLogprobs of a choice's `logprobs` value (`{content: [...]}`):
 * malformed entries skipped, at most `want.top` alternatives each. Empty
 * when `want` is undefined or the backend sent none.
 */
export function logprobsOf(choiceLogprobs: unknown, want: LogprobsWant | undefined): TokenLogprob[] {
  if (want === undefined) return [];
  const content = obj(choiceLogprobs)?.content;
  if (!Array.isArray(content)) return [];
  const out: TokenLogprob[] = [];
  for (const item of content) {
    const head = alternative(item);
    if (head === undefined) continue;
    const tops = (item as Json).top_logprobs;
    const topLogprobs: TopLogprob[] = [];
    if (Array.isArray(tops)) {
      for (const t of tops) {
        if (topLogprobs.length >= want.top) break;
        const alt = alternative(t);
        if (alt !== undefined) topLogprobs.push(alt);
      }
    }
    out.push({ token: head.token, logprob: head.logprob, topLogprobs });
  }
  return out;
}

/**
 * Splits a delta whose logprobs exceed what one chunk may carry into
 * several, each with at most MAX_LOGPROBS_PER_CHUNK entries and the part of
 * the text those tokens spell. Reasoning goes with the first piece, tool
 * calls and the finish reason with the last. Token strings do not always
 * spell the text exactly (a character split across tokens, a backend's own
 * rendering of bytes): from the first piece whose tokens do not match, the
 * rest of the text goes with that piece and the later ones carry none, so
 * text and logprobs still arrive whole and in order.
 */
export function splitDelta(ev: DeltaEvent): DeltaEvent[] {
  const entries = ev.logprobs;
  if (entries === undefined || entries.length <= MAX_LOGPROBS_PER_CHUNK) return [ev];
  const out: DeltaEvent[] = [];
  let at = 0;
  let aligned = true;
  for (let from = 0; from < entries.length; from += MAX_LOGPROBS_PER_CHUNK) {
    const group = entries.slice(from, from + MAX_LOGPROBS_PER_CHUNK);
    const last = from + MAX_LOGPROBS_PER_CHUNK >= entries.length;
    let text = "";
    if (last) {
      text = ev.content.slice(at);
    } else if (aligned) {
      const spelt = group.map((e) => e.token).join("");
      if (ev.content.startsWith(spelt, at)) {
        text = spelt;
      } else {
        aligned = false;
        text = ev.content.slice(at);
      }
    }
    at += text.length;
    out.push({
      ...ev,
      type: "delta",
      content: text,
      reasoning: from === 0 ? ev.reasoning : "",
      toolCalls: last ? ev.toolCalls : [],
      finishReason: last ? ev.finishReason : FinishReason.FINISH_REASON_UNSPECIFIED,
      logprobs: group,
    });
  }
  return out;
}
