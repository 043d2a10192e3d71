import { TensorClawError } from "../../common/errors.js";
import { DEFAULT_ENCODING, type TokenCount } from "../../common/tokens/encodings.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { InferenceCall } from "../tunnel/types.js";
import { ESTIMATE_BYTES_PER_TOKEN } from "../usage/clamp.js";
import type { UsageOutcome } from "../usage/event.js";
import { AttemptLoop, type AttemptState, attemptFacts, freshAttempts } from "./attempt-loop.js";
import type { RequestBilling } from "./chat-billing.js";
import { type HandOff, handOffDurably, handOffUsage, type UsageHandOffDeps } from "./chat-usage.js";
import { encodeVector, type ParsedEmbeddingRequest, parseEmbeddingBody } from "./embeddings-request.js";
import { embeddingCredit, embeddingPromptSize, embeddingWorstCase } from "./embeddings-usage.js";
import { sendJson } from "./http.js";
import { OneModelEndpoint } from "./one-model-endpoint.js";
import type { Reservation } from "./rate-limiter.js";
import {
  admitKey,
  closeRequest,
  type Incoming,
  openRequest,
  readOneModelRequest,
  refusedForCapacity,
} from "./request-frame.js";
import { holdForModel } from "./request-hold.js";
import { type Attempt, upstreamError } from "./upstream.js";

/** A chat request standing in where the usage hand-off wants one: embeddings pass their credit in. */
const NO_CHAT = ChatRequest.fromPartial({});

/** One request's state across its attempts. */
interface EmbeddingState extends AttemptState {
  readonly parsed: ParsedEmbeddingRequest;
  readonly billing: RequestBilling | undefined;
  /** The inputs' count made for the hold, under `count`. */
  readonly counted: number | undefined;
  readonly count: TokenCount | undefined;
  outcome: UsageOutcome | undefined;
  /** The vectors of the current attempt, by input index. */
  vectors: (Float32Array | undefined)[];
  /** The usage hand-off, once done (before a completed answer is sent, else when the request ends). */
  handed?: HandOff;
}

/**
 * `POST /v1/embeddings`: the same path as chat (authentication, rate
 * limits, the metered key's hold, the shared attempt loop of
 * attempt-loop.ts, usage events, the access log and metrics), for models
 * that offer embeddings. Nothing reaches the user before the last vector
 * has arrived, so any miner failure may be retried on another (a refusal
 * gets a second opinion). The vectors were checked on arrival
 * (router/tunnel/kind-check.ts); the credit is prompt tokens only
 * (embeddings-usage.ts).
 */
export class EmbeddingsEndpoint extends OneModelEndpoint {
  protected async serve(inc: Incoming, label: { model: string }): Promise<number> {
    const d = this.deps;
    const { res, requestId, caller, access } = inc;
    const startedAtMs = d.clock();
    const { parsed, entry } = await readOneModelRequest(d, inc, label, parseEmbeddingBody);
    const count = d.encodings.get(entry.tokenizer ?? DEFAULT_ENCODING);
    const key = caller.key;
    let reservation: Reservation | undefined;
    let billing: RequestBilling | undefined;
    let counted: number | undefined;
    if (key !== undefined) {
      const estimate = Math.ceil(parsed.inputBytes / ESTIMATE_BYTES_PER_TOKEN);
      const kb = this.billing;
      const opts = { clock: d.clock, requestTimeoutMs: d.options.requestTimeoutMs, nowMs: startedAtMs };
      // The inputs' most creditable tokens at the prompt price: nothing else is credited.
      const hold =
        kb &&
        (() =>
          holdForModel(kb, key.id, entry, opts, () => ({
            completionTokens: 0,
            ...embeddingWorstCase(parsed.embedding, parsed.inputBytes, count),
          })));
      const admitted = await admitKey(d, res, key, estimate, requestId, startedAtMs, hold);
      reservation = admitted.reservation;
      ({ billing, counted } = admitted.held ?? { billing: undefined, counted: undefined });
    }
    const st: EmbeddingState = {
      parsed,
      billing,
      counted,
      count,
      outcome: undefined,
      vectors: [],
      ...freshAttempts(requestId, startedAtMs, key?.id ?? "anonymous"),
    };
    const close = openRequest(d, res, st, parsed.model);
    let capacityRefused = false;
    try {
      const result = await this.attempts(st);
      if (result.kind !== "done") {
        st.outcome = result.error.code === "cancelled" || st.clientGone ? "cancelled" : "failed";
        // Refused for want of capacity (no miner took it on): the key's request is given back.
        capacityRefused = refusedForCapacity(result.error.code, st);
        throw result.error;
      }
      st.outcome = "completed";
      const u = this.credit(st);
      // Sent only once its usage is durable: a router killed after the user has the vectors has counted them.
      await handOffDurably(d, d.options.usageDurableWaitMs, st, (dd) => this.handOff(dd, st));
      sendJson(res, 200, this.answer(st, u.promptTokens), requestId);
      return 200;
    } finally {
      close();
      const handed = st.handed ?? this.handOff(d, st);
      closeRequest(
        d,
        this.billing,
        {
          requestId,
          model: parsed.model,
          st,
          handed,
          reservation,
          billing,
          refusedForCapacity: capacityRefused,
        },
        access,
      );
    }
  }

  /** Records the request's usage (chat-usage.ts handOffUsage) with what an embedding request knows. */
  private handOff(d: UsageHandOffDeps, st: EmbeddingState): HandOff {
    const { parsed, count, billing } = st;
    return handOffUsage(
      d,
      {
        model: parsed.model,
        prompt: embeddingPromptSize(parsed.embedding, parsed.inputBytes),
        maxTokens: 0,
        outcome: st.outcome,
        chat: NO_CHAT,
        count,
        billing,
        finishReason: null,
        streamed: false,
        ...attemptFacts(st),
      },
      st.outcome === "completed" ? this.credit(st) : undefined,
    );
  }

  private credit(st: EmbeddingState) {
    return embeddingCredit(st.parsed.embedding, st.parsed.inputBytes, st.count, st.reported, st.counted);
  }

  /** OpenAI's answer shape, vectors in input order. */
  private answer(st: EmbeddingState, promptTokens: number): unknown {
    const format = st.parsed.encodingFormat;
    return {
      object: "list",
      data: st.vectors.map((v, index) => ({
        object: "embedding",
        index,
        embedding: encodeVector(v ?? new Float32Array(0), format),
      })),
      model: st.parsed.model,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    };
  }

  /** Tries miners offering embeddings for the model until one answers in full. */
  private async attempts(st: EmbeddingState): Promise<Attempt> {
    const loop: AttemptLoop = new AttemptLoop(this.deps, st, {
      kind: "embedding",
      work: "embeddings of ",
      body: () => ({ embedding: st.parsed.embedding }),
      relay: (call) => this.attempt(st, call, loop),
      // Nothing reaches the user before the last vector has arrived.
      outputSent: () => false,
    });
    try {
      return await loop.tryModel(st.parsed.model);
    } finally {
      loop.close();
    }
  }

  /**
   * Collects one miner's vectors. Nothing has reached the user yet, so any
   * failure but the user's own (an invalid request) lets another miner try.
   */
  private async attempt(st: EmbeddingState, call: InferenceCall, loop: AttemptLoop): Promise<Attempt> {
    st.vectors = new Array(st.parsed.embedding.input.length).fill(undefined);
    for await (const ev of call.events) {
      if (ev.type === "chunk") {
        if (ev.chunk.embeddings.length > 0) loop.firstToken(st.parsed.model);
        for (const e of ev.chunk.embeddings) st.vectors[e.index] = Float32Array.from(e.values);
      } else if (ev.type === "usage") {
        st.reported = ev;
        return { kind: "done" };
      } else {
        if (st.clientGone) return { kind: "failed", error: new TensorClawError("cancelled") };
        const u = upstreamError(ev, this.deps.options.noCapacityRetryAfterMs);
        return u.retry ? { kind: "retry", error: u.error } : { kind: "failed", error: u.error };
      }
    }
    return { kind: "retry", error: new TensorClawError("upstream_error") };
  }
}
