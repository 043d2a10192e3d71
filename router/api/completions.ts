import type { IncomingMessage, ServerResponse } from "node:http";
import { TensorClawError, toHttpError, toTensorClawError } from "../../common/errors.js";
import { DEFAULT_ENCODING, type TokenCount } from "../../common/tokens/encodings.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import { costMicros } from "../billing/money.js";
import type { CatalogueEntry } from "../catalogue/entry.js";
import { carriesToken } from "../routing/first-token.js";
import type { RoutingOutcome } from "../routing/outcome-window.js";
import { modelOffered } from "../routing/picker.js";
import type { InferenceCall, SessionView } from "../tunnel/types.js";
import { type ClampedUsage, ESTIMATE_BYTES_PER_TOKEN, type ReportedUsage } from "../usage/clamp.js";
import type { UsageOutcome } from "../usage/event.js";
import type { AccessRecord } from "./access-log.js";
import { attemptOutcome } from "./attempt-outcome.js";
import type { Caller, ChatDeps } from "./chat.js";
import { HOLD_TTL_MARGIN_MS, type KeyBilling, priced, type RequestBilling } from "./chat-billing.js";
import type { ChatSink } from "./chat-sinks.js";
import { handOffUsage, ledgerOutcome, recordFailedAttempt } from "./chat-usage.js";
import { type ParsedCompletionRequest, parseCompletionBody } from "./completions-request.js";
import { CompletionJsonSink, CompletionSseSink } from "./completions-sinks.js";
import { completionCredit, completionPromptSize, completionWorstCase } from "./completions-usage.js";
import { parseJson, readBody } from "./http.js";
import { applyReservation } from "./rate-limit-headers.js";
import type { Reservation } from "./rate-limiter.js";
import { type Attempt, upstreamError } from "./upstream.js";

/** A chat request standing in where the usage hand-off wants one: completions pass their credit in. */
const NO_CHAT = ChatRequest.fromPartial({});

interface CompletionState {
  readonly requestId: string;
  readonly startedAtMs: number;
  readonly parsed: ParsedCompletionRequest;
  /** Most completion tokens credited per choice. */
  readonly perChoice: number;
  readonly billing: RequestBilling | undefined;
  readonly counted: number | undefined;
  readonly count: TokenCount | undefined;
  clientGone: boolean;
  call: InferenceCall | undefined;
  session: SessionView | undefined;
  lastAttempt: RoutingOutcome | undefined;
  reported: ReportedUsage | undefined;
  outcome: UsageOutcome | undefined;
  firstTokenAtMs: number | undefined;
  credited: ClampedUsage | undefined;
}

/**
 * `POST /v1/completions` (legacy text completions): the chat endpoint's
 * path — authentication, rate limits, the metered key's hold, routing with
 * failover before any output, usage events, access log and metrics — for
 * models that offer completions, answered as `text_completion` JSON or SSE.
 */
export class CompletionsEndpoint {
  constructor(
    private readonly deps: ChatDeps,
    /** The chat endpoint's billing (one set of leases per router). */
    private readonly billing: KeyBilling | undefined,
  ) {}

  /** Serves one request; resolves to the HTTP status (200 for streams that started). */
  async handle(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    caller: Caller,
    access: AccessRecord = {},
  ): Promise<number> {
    const label = { model: "unknown" };
    const receivedAtMs = this.deps.clock();
    let status = 500;
    try {
      status = await this.serve(req, res, requestId, caller, label, access);
    } catch (err) {
      status = toHttpError(err).status;
      throw err;
    } finally {
      this.deps.metrics.requests.inc({ model: label.model, status: String(status) });
      const seconds = (this.deps.clock() - receivedAtMs) / 1000;
      this.deps.metrics.duration.observe({ model: label.model, status: String(status) }, seconds);
    }
    return status;
  }

  private async serve(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    caller: Caller,
    label: { model: string },
    access: AccessRecord,
  ): Promise<number> {
    const d = this.deps;
    const startedAtMs = d.clock();
    const asked = parseCompletionBody(parseJson(await readBody(req, d.options.maxBodyBytes)), {
      userSalt: d.options.userSalt,
      account: caller.key?.id ?? "anonymous",
    });
    const entry = d.catalogue().resolve(asked.model);
    const known =
      entry !== undefined &&
      (d.catalogue().lists(entry.id) || modelOffered(d.dispatcher.sessions(), entry.id));
    if (entry === undefined || !known) {
      throw new TensorClawError(
        "model_not_found",
        `The model ${JSON.stringify(asked.model)} does not exist.`,
        {
          param: "model",
        },
      );
    }
    const parsed = { ...asked, model: entry.id };
    label.model = parsed.model;
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
      const r = await d.limiter.reserve(key.id, key.limits, estimate, startedAtMs);
      applyReservation(res, key.limits, r);
      reservation = r.reservation;
      if (this.billing !== undefined) {
        try {
          ({ billing, counted } = await this.bill(
            this.billing,
            key.id,
            parsed,
            entry,
            perChoice,
            count,
            startedAtMs,
          ));
        } catch (err) {
          this.reconcile(reservation, 0, requestId);
          throw err;
        }
      }
    }
    const st: CompletionState = {
      requestId,
      startedAtMs,
      parsed,
      perChoice,
      billing,
      counted,
      count,
      clientGone: res.destroyed,
      call: undefined,
      session: undefined,
      lastAttempt: undefined,
      reported: undefined,
      outcome: undefined,
      firstTokenAtMs: undefined,
      credited: undefined,
    };
    const onClose = () => {
      if (!res.writableFinished) {
        st.clientGone = true;
        st.call?.cancel("client disconnected");
      }
    };
    res.once("close", onClose);
    d.metrics.inFlight.inc();
    let status = 500;
    try {
      status = await this.relay(st, this.sink(res, st));
    } finally {
      d.metrics.inFlight.dec();
      res.off("close", onClose);
      const ttftMs = st.firstTokenAtMs === undefined ? null : st.firstTokenAtMs - startedAtMs;
      const handed = handOffUsage(
        d,
        {
          requestId,
          model: parsed.model,
          startedAtMs,
          prompt: completionPromptSize(parsed.completion, parsed.promptBytes),
          maxTokens: perChoice,
          call: st.call,
          minerHotkey: st.session?.hotkey,
          reported: st.reported,
          outcome: st.outcome,
          lastAttempt: st.lastAttempt,
          chat: NO_CHAT,
          count,
          billing,
          ttftMs,
          finishReason: st.outcome === "completed" ? "stop" : null,
          streamed: parsed.stream,
        },
        st.call === undefined || st.outcome === undefined || st.outcome === "failed"
          ? undefined
          : this.credit(st),
      );
      access.model = parsed.model;
      if (st.session !== undefined) access.miner = st.session.hotkey;
      access.promptTokens = handed.credited.promptTokens;
      access.completionTokens = handed.credited.completionTokens;
      access.ttftMs = ttftMs;
      const used = handed.credited.promptTokens + handed.credited.completionTokens;
      if (reservation !== undefined) this.reconcile(reservation, used, requestId);
      if (billing?.ticket !== undefined) this.billing?.finish(billing.ticket, handed.chargedMicros);
    }
    return status;
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

  private async bill(
    billing: KeyBilling,
    keyId: string,
    parsed: ParsedCompletionRequest,
    entry: CatalogueEntry,
    perChoice: number,
    count: TokenCount | undefined,
    nowMs: number,
  ): Promise<{ billing: RequestBilling; counted: number | undefined }> {
    let settings = billing.settings(keyId, nowMs);
    if (settings instanceof Promise) settings = await settings;
    const prices = { pricePromptPerM: entry.pricePromptPerM, priceCompletionPerM: entry.priceCompletionPerM };
    const metered = settings?.metered === true;
    if (!metered || !priced(prices)) {
      return { billing: { keyId, metered, paid: false, prices, holdMicros: 0 }, counted: undefined };
    }
    const worst = completionWorstCase(parsed.completion, parsed.promptBytes, perChoice, count);
    const holdMicros = costMicros(
      worst.promptTokens,
      worst.completionTokens,
      prices.pricePromptPerM,
      prices.priceCompletionPerM,
    );
    const ttlMs = this.deps.options.requestTimeoutMs + HOLD_TTL_MARGIN_MS;
    const ticket = await billing.hold(keyId, holdMicros, this.deps.clock, ttlMs);
    return {
      billing: { keyId, metered: true, paid: true, prices, holdMicros, ticket },
      counted: worst.counted,
    };
  }

  private reconcile(reservation: Reservation, used: number, requestId: string): void {
    const d = this.deps;
    d.limiter
      .reconcile(reservation, used, d.clock())
      .catch((err: unknown) => d.logger.warn({ err, requestId }, "rate-limit reconcile failed"));
  }

  private async relay(st: CompletionState, sink: ChatSink): Promise<number> {
    sink.begin();
    const result = await this.attempts(st, sink);
    sink.settle();
    if (result.kind === "done") {
      st.outcome = "completed";
      return sink.complete(() => this.credit(st));
    }
    st.outcome = result.error.code === "cancelled" || sink.gone ? "cancelled" : "failed";
    if (sink.gone) return 499;
    return sink.fail(result.error);
  }

  /** Tries miners offering completions until one answers; none replaces one whose output reached the user. */
  private async attempts(st: CompletionState, sink: ChatSink): Promise<Attempt> {
    const d = this.deps;
    const model = st.parsed.model;
    const deadline = st.startedAtMs + d.options.requestTimeoutMs;
    const tried = new Set<string>();
    let last: TensorClawError | undefined;
    let failingOver = false;
    for (let attempt = 0; attempt < d.options.maxAttempts; attempt++) {
      if (st.clientGone) return { kind: "failed", error: new TensorClawError("cancelled") };
      const remaining = deadline - d.clock();
      if (remaining <= 0) return { kind: "failed", error: new TensorClawError("upstream_timeout") };
      const session = d.routing.choose(d.dispatcher.sessions(), model, tried, "completion");
      if (session === undefined) break;
      tried.add(session.hotkey);
      let call: InferenceCall;
      try {
        call = d.dispatcher.dispatch(
          session.sessionId,
          model,
          { completion: st.parsed.completion },
          { deadlineMs: remaining },
        );
      } catch (err) {
        const e = toTensorClawError(err);
        if (e.code !== "no_capacity") last = e;
        continue;
      }
      if (failingOver) d.metrics.failovers.inc({ model });
      failingOver = false;
      st.call = call;
      st.session = session;
      st.reported = undefined;
      const dispatchedAtMs = d.clock();
      const ticket = d.routing.started(session.hotkey, model);
      let result: Attempt | undefined;
      try {
        result = await this.attempt(st, call, sink, () => {
          if (st.firstTokenAtMs !== undefined) return;
          const now = d.clock();
          st.firstTokenAtMs = now;
          d.metrics.ttft.observe({ model }, (now - st.startedAtMs) / 1000);
          d.metrics.minerTtft.observe({ hotkey: session.hotkey }, (now - dispatchedAtMs) / 1000);
          d.routing.firstToken(ticket);
        });
      } finally {
        st.lastAttempt = attemptOutcome(result, st.clientGone);
        d.routing.ended(ticket, st.lastAttempt);
        d.metrics.minerAttempts.inc({ hotkey: session.hotkey, outcome: st.lastAttempt });
      }
      if (result.kind !== "retry") return result;
      const failed = ledgerOutcome(st.lastAttempt);
      if (failed !== undefined) {
        const r = { requestId: st.requestId, model, startedAtMs: st.startedAtMs };
        recordFailedAttempt(d, r, session.hotkey, failed);
      }
      st.lastAttempt = undefined;
      st.firstTokenAtMs = undefined;
      last = result.error;
      st.call = undefined;
      st.session = undefined;
      failingOver = true;
    }
    return {
      kind: "failed",
      error:
        last ??
        new TensorClawError(
          "no_capacity",
          `No miner can serve completions of ${JSON.stringify(model)} right now.`,
          {
            retryAfterMs: d.options.noCapacityRetryAfterMs,
          },
        ),
    };
  }

  private async attempt(
    st: CompletionState,
    call: InferenceCall,
    sink: ChatSink,
    firstToken: () => void,
  ): Promise<Attempt> {
    for await (const ev of call.events) {
      if (ev.type === "chunk") {
        if (carriesToken(ev.chunk)) firstToken();
        let taken = sink.chunk(ev.chunk);
        if (taken !== true && taken !== false) taken = await taken;
        if (!taken) call.cancel("client disconnected");
      } else if (ev.type === "usage") {
        st.reported = ev;
        return { kind: "done" };
      } else {
        if (st.clientGone) return { kind: "failed", error: new TensorClawError("cancelled") };
        const u = upstreamError(ev, this.deps.options.noCapacityRetryAfterMs);
        return sink.chunks === 0 && u.retry
          ? { kind: "retry", error: u.error }
          : { kind: "failed", error: u.error };
      }
    }
    return { kind: sink.chunks === 0 ? "retry" : "failed", error: new TensorClawError("upstream_error") };
  }
}
