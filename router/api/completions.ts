import type { ServerResponse } from "node:http";
import { DEFAULT_ENCODING, type TokenCount } from "../../common/tokens/encodings.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import { type ClampedUsage, ESTIMATE_BYTES_PER_TOKEN } from "../usage/clamp.js";
import { AttemptLoop, attemptFacts, freshAttempts } from "./attempt-loop.js";
import { relayRequest, relayToSink, type SinkRequestState } from "./attempt-relay.js";
import type { RequestBilling } from "./chat-billing.js";
import type { ChatSink } from "./chat-sinks.js";
import { type HandOff, handOffDurably, handOffUsage, type UsageHandOffDeps } from "./chat-usage.js";
import { type ParsedCompletionRequest, parseCompletionBody } from "./completions-request.js";
import { CompletionJsonSink, CompletionSseSink } from "./completions-sinks.js";
import { completionCredit, completionPromptSize, completionWorstCase } from "./completions-usage.js";
import { OneModelEndpoint } from "./one-model-endpoint.js";
import type { Reservation } from "./rate-limiter.js";
import { admitKey, closeRequest, type Incoming, openRequest, readOneModelRequest } from "./request-frame.js";
import { holdForModel } from "./request-hold.js";
import type { Attempt } from "./upstream.js";

/** A chat request standing in where the usage hand-off wants one: completions pass their credit in. */
const NO_CHAT = ChatRequest.fromPartial({});

interface CompletionState extends SinkRequestState {
  readonly parsed: ParsedCompletionRequest;
  /** Most completion tokens credited per choice. */
  readonly perChoice: number;
  readonly billing: RequestBilling | undefined;
  readonly counted: number | undefined;
  readonly count: TokenCount | undefined;
  credited: ClampedUsage | undefined;
  /** The usage hand-off, once done (before the end of a completed answer, else when the request ends). */
  handed?: HandOff;
}

/**
 * `POST /v1/completions` (legacy text completions): the chat endpoint's
 * path — authentication, rate limits, the metered key's hold, the shared
 * attempt loop (attempt-loop.ts), usage events, access log and metrics —
 * for models that offer completions, answered as `text_completion` JSON or
 * SSE.
 */
export class CompletionsEndpoint extends OneModelEndpoint {
  protected async serve(inc: Incoming, label: { model: string }): Promise<number> {
    const d = this.deps;
    const { res, requestId, caller, access } = inc;
    const startedAtMs = d.clock();
    const { parsed, entry } = await readOneModelRequest(d, inc, label, parseCompletionBody);
    // The credit ceiling per choice: what was asked, else what the model can hold, else the router's default.
    const perChoice =
      parsed.completion.maxTokens ??
      (entry.contextLength > 0 ? entry.contextLength : d.options.defaultMaxTokens);
    const count = d.encodings.get(entry.tokenizer ?? DEFAULT_ENCODING);
    const key = caller.key;
    let reservation: Reservation | undefined;
    let billing: RequestBilling | undefined;
    let counted: number | undefined;
    if (key !== undefined) {
      const estimate =
        Math.ceil(parsed.promptBytes / ESTIMATE_BYTES_PER_TOKEN) +
        (parsed.completion.maxTokens ?? 0) * parsed.choices;
      const kb = this.billing;
      const opts = { clock: d.clock, requestTimeoutMs: d.options.requestTimeoutMs, nowMs: startedAtMs };
      const hold =
        kb &&
        (() =>
          holdForModel(kb, key.id, entry, opts, () =>
            completionWorstCase(parsed.completion, parsed.promptBytes, perChoice, count),
          ));
      const admitted = await admitKey(d, res, key, estimate, requestId, startedAtMs, hold);
      reservation = admitted.reservation;
      ({ billing, counted } = admitted.held ?? { billing: undefined, counted: undefined });
    }
    const st: CompletionState = {
      parsed,
      perChoice,
      billing,
      counted,
      count,
      outcome: undefined,
      credited: undefined,
      refusedForCapacity: false,
      ...freshAttempts(requestId, startedAtMs, key?.id ?? "anonymous"),
    };
    const close = openRequest(d, res, st, parsed.model);
    let status = 500;
    try {
      const sink = this.sink(res, st);
      status = await relayRequest(
        st,
        sink,
        () => this.attempts(st, sink),
        () => this.credit(st),
        () => {
          return handOffDurably(d, d.options.usageDurableWaitMs, st, (dd) => this.handOff(dd, st));
        },
      );
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
          refusedForCapacity: st.refusedForCapacity,
        },
        access,
      );
    }
    return status;
  }

  /** Records the request's usage (chat-usage.ts handOffUsage) with what a completion knows. */
  private handOff(d: UsageHandOffDeps, st: CompletionState): HandOff {
    const { parsed, perChoice, count, billing } = st;
    return handOffUsage(
      d,
      {
        model: parsed.model,
        prompt: completionPromptSize(parsed.completion, parsed.promptBytes),
        maxTokens: perChoice,
        outcome: st.outcome,
        chat: NO_CHAT,
        count,
        billing,
        finishReason: st.outcome === "completed" ? "stop" : null,
        streamed: parsed.stream,
        ...attemptFacts(st),
      },
      st.call === undefined || st.outcome === undefined || st.outcome === "failed"
        ? undefined
        : this.credit(st),
    );
  }

  private sink(res: ServerResponse, st: CompletionState): ChatSink {
    const ident = {
      id: `cmpl-${st.requestId}`,
      created: Math.floor(st.startedAtMs / 1000),
      model: st.parsed.model,
    };
    const top = st.parsed.completion.logprobs;
    return st.parsed.stream
      ? new CompletionSseSink(
          res,
          st.requestId,
          ident,
          st.parsed.choices,
          top,
          st.parsed.includeUsage,
          this.deps.options.keepAliveMs,
        )
      : new CompletionJsonSink(res, st.requestId, ident, st.parsed.choices, top);
  }

  /** The credited usage, computed once (the answer and the usage event show the same figure). */
  private credit(st: CompletionState): ClampedUsage {
    const call = st.call;
    if (call === undefined) return { promptTokens: 0, completionTokens: 0, clamped: false };
    st.credited ??= completionCredit(
      st.parsed.completion,
      st.parsed.promptBytes,
      st.perChoice,
      { choices: call.relayedChoices().map((c) => c?.content), bytes: call.relayedBytes() },
      st.count,
      st.reported,
      st.counted,
    );
    return st.credited;
  }

  /** Tries miners offering completions for the model until one answers (attempt-loop.ts). */
  private async attempts(st: CompletionState, sink: ChatSink): Promise<Attempt> {
    const loop: AttemptLoop = new AttemptLoop(this.deps, st, {
      kind: "completion",
      work: "completions of ",
      body: () => ({ completion: st.parsed.completion }),
      relay: (call) =>
        relayToSink(st, call, sink, loop, st.parsed.model, this.deps.options.noCapacityRetryAfterMs),
      outputSent: () => sink.chunks > 0,
    });
    try {
      return await loop.tryModel(st.parsed.model);
    } finally {
      loop.close();
    }
  }
}
