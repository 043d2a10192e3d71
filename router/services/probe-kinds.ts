/**
 * Probes of models that do not serve chat. A validator writes every probe
 * as a chat request (probe.proto); for a model that offers only other
 * kinds, the router sends the same words as that kind of request, shaped
 * like user traffic of that kind: a text completion of the conversation's
 * text, or an embeddings request of its messages. Liveness is judged on the
 * first token (probe-run.ts) or on the first vector (here).
 */
import type { Clock } from "../../common/clock.js";
import { type ModelKind, offersKind } from "../../common/request-kinds.js";
import { textOfParts } from "../../common/tokens/prompt.js";
import {
  type ChatRequest,
  type CompletionRequest,
  type Embedding,
  type EmbeddingRequest,
  FinishReason,
} from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import type { DispatchBody, InferenceCall } from "../tunnel/types.js";
import { type ProbeRunResult, USER_DISCONNECT_REASON } from "./probe-run.js";

/** Most alternatives a completion probe asks for (the legacy API's ceiling). */
const MAX_COMPLETION_LOGPROBS = 5;

/** The kind a probe of a model is sent as: chat when it serves chat, else completion, else embedding. */
export function probeKind(kinds: readonly ModelKind[] | undefined): ModelKind | undefined {
  for (const k of ["chat", "completion", "embedding"] as const) if (offersKind(kinds, k)) return k;
  return undefined;
}

function texts(chat: ChatRequest): string[] {
  return chat.messages.map((m) => m.content ?? textOfParts(m.contentPartsJson)).filter((t) => t !== "");
}

/** The request a probe's chat body becomes for a model served as `kind`. */
export function probeBody(chat: ChatRequest, kind: ModelKind): DispatchBody {
  if (kind === "chat") return chat;
  if (kind === "completion") {
    const completion: CompletionRequest = {
      prompt: [texts(chat).join("\n\n")],
      suffix: "",
      maxTokens: chat.maxTokens ?? chat.maxCompletionTokens,
      temperature: chat.temperature,
      topP: chat.topP,
      n: undefined,
      logprobs: chat.logprobs === true ? Math.min(chat.topLogprobs ?? 0, MAX_COMPLETION_LOGPROBS) : undefined,
      echo: false,
      stop: chat.stop,
      seed: chat.seed === undefined ? undefined : BigInt(chat.seed),
      frequencyPenalty: chat.frequencyPenalty,
      presencePenalty: chat.presencePenalty,
      user: chat.user,
      extraJson: "",
      stream: chat.stream,
    };
    return { completion };
  }
  const input = texts(chat);
  const embedding: EmbeddingRequest = {
    input: input.length > 0 ? input : ["."],
    dimensions: undefined,
    user: chat.user,
  };
  return { embedding };
}

/** Settings of one embeddings probe. */
export interface EmbeddingProbeOptions {
  readonly livenessMs: number;
  readonly now: () => number;
  readonly clock: Clock;
  /** Return the vectors (an audit: the validator judges them); a liveness probe does not need them. */
  readonly keepVectors: boolean;
}

/**
 * Relays an embeddings probe: live once the first vector arrives within
 * `livenessMs` of sending (the tunnel checked it: kind-check.ts), ok once
 * every vector came and the miner finished cleanly. Not live in time:
 * cancelled as a user disconnect, failed. With `keepVectors`, the vectors
 * of a passed probe come back in input order.
 */
export async function runEmbeddingProbe(
  call: InferenceCall,
  startedMs: number,
  o: EmbeddingProbeOptions,
): Promise<ProbeRunResult> {
  const vectors: Embedding[] = [];
  let liveMs: number | undefined;
  let late = false;
  let clean = false;
  let error = "";
  let endedMs: number | undefined;
  const timer = o.clock.setTimeout(() => {
    if (liveMs !== undefined) return;
    late = true;
    endedMs = o.now();
    call.cancel(USER_DISCONNECT_REASON);
  }, o.livenessMs);
  try {
    for await (const e of call.events) {
      if (e.type === "chunk") {
        if (liveMs === undefined && e.chunk.embeddings.length > 0) liveMs = o.now() - startedMs;
        if (o.keepVectors) vectors.push(...e.chunk.embeddings);
      } else if (e.type === "usage") {
        clean = true;
        endedMs = o.now();
      } else {
        endedMs ??= o.now();
        if (!(late && e.code === RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED)) {
          error = `${RequestErrorCode[e.code] ?? e.code}: ${e.message}`;
        }
      }
    }
  } finally {
    o.clock.clearTimeout(timer);
  }
  const ok = liveMs !== undefined && !late && clean && error === "";
  return {
    ok,
    ttftMs: liveMs ?? 0,
    latencyMs: Math.max(0, (endedMs ?? o.now()) - startedMs),
    completionTokens: 0,
    error: ok
      ? ""
      : late
        ? "no vector within the liveness deadline"
        : error !== ""
          ? error
          : "no clean finish",
    content: "",
    finishReason: FinishReason.FINISH_REASON_UNSPECIFIED,
    logprobs: [],
    cut: false,
    livenessMs: ok ? (liveMs ?? 0) : 0,
    embeddings: ok ? vectors.sort((a, b) => a.index - b.index) : [],
  };
}
