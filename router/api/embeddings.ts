import type { IncomingMessage, ServerResponse } from "node:http";
import { TensorClawError, toHttpError, toTensorClawError } from "../../common/errors.js";
import { DEFAULT_ENCODING, type TokenCount } from "../../common/tokens/encodings.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import { costMicros } from "../billing/money.js";
import type { CatalogueEntry } from "../catalogue/entry.js";
import type { RoutingOutcome } from "../routing/outcome-window.js";
import { modelOffered } from "../routing/picker.js";
import type { InferenceCall, SessionView } from "../tunnel/types.js";
import { ESTIMATE_BYTES_PER_TOKEN, type ReportedUsage } from "../usage/clamp.js";
import type { UsageOutcome } from "../usage/event.js";
import type { AccessRecord } from "./access-log.js";
import { attemptOutcome } from "./attempt-outcome.js";
import type { Caller, ChatDeps } from "./chat.js";
import { HOLD_TTL_MARGIN_MS, type KeyBilling, priced, type RequestBilling } from "./chat-billing.js";
import { handOffUsage, ledgerOutcome, recordFailedAttempt } from "./chat-usage.js";
import { encodeVector, type ParsedEmbeddingRequest, parseEmbeddingBody } from "./embeddings-request.js";
import { embeddingCredit, embeddingPromptSize, embeddingWorstCase } from "./embeddings-usage.js";
import { parseJson, readBody, sendJson } from "./http.js";
import { applyReservation } from "./rate-limit-headers.js";
import type { Reservation } from "./rate-limiter.js";
import { type Attempt, upstreamError } from "./upstream.js";

/** A chat request standing in where the usage hand-off wants one: embeddings pass their credit in. */
const NO_CHAT = ChatRequest.fromPartial({});

/** One request's state across its attempts. */
interface EmbeddingState {
  readonly requestId: string;
  readonly startedAtMs: number;
  readonly parsed: ParsedEmbeddingRequest;
  readonly billing: RequestBilling | undefined;
  /** The inputs' count made for the hold, under `count`. */
  readonly counted: number | undefined;
  readonly count: TokenCount | undefined;
  clientGone: boolean;
  call: InferenceCall | undefined;
  session: SessionView | undefined;
  lastAttempt: RoutingOutcome | undefined;
  reported: ReportedUsage | undefined;
  outcome: UsageOutcome | undefined;
  firstVectorAtMs: number | undefined;
  /** The vectors of the current attempt, by input index. */
  vectors: (Float32Array | undefined)[];
}

/**
 * `POST /v1/embeddings`: the same path as chat (authentication, rate
 * limits, the metered key's hold, routing with failover, usage events, the
 * access log and metrics), for models that offer embeddings. Nothing reaches
 * the user before the last vector has arrived, so any miner failure may be
 * retried on another. The vectors were checked on arrival
 * (router/tunnel/kind-check.ts); the credit is prompt tokens only
 * (embeddings-usage.ts).
 */
export class EmbeddingsEndpoint {
  constructor(
    private readonly deps: ChatDeps,
    /** The chat endpoint's billing (one set of leases per router). */
    private readonly billing: KeyBilling | undefined,
  ) {}

  /** Serves one request; resolves to the HTTP status. */
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
    const asked = parseEmbeddingBody(parseJson(await readBody(req, d.options.maxBodyBytes)), {
      userSalt: d.options.userSalt,
      account: caller.key?.id ?? "anonymous",
    });
    const entry = d.catalogue().resolve(asked.model);
    const offered =
      entry !== undefined &&
      (d.catalogue().lists(entry.id) || modelOffered(d.dispatcher.sessions(), entry.id));
    if (entry === undefined || !offered) {
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
    const count = d.encodings.get(entry.tokenizer ?? DEFAULT_ENCODING);
    const key = caller.key;
    let reservation: Reservation | undefined;
    let billing: RequestBilling | undefined;
    let counted: number | undefined;
    if (key !== undefined) {
      const r = await d.limiter.reserve(
        key.id,
        key.limits,
        Math.ceil(parsed.inputBytes / ESTIMATE_BYTES_PER_TOKEN),
        startedAtMs,
      );
      applyReservation(res, key.limits, r);
      reservation = r.reservation;
      if (this.billing !== undefined) {
        try {
          ({ billing, counted } = await this.bill(this.billing, key.id, parsed, entry, count, startedAtMs));
        } catch (err) {
          this.reconcile(reservation, 0, requestId);
          throw err;
        }
      }
    }
    const st: EmbeddingState = {
      requestId,
      startedAtMs,
      parsed,
      billing,
      counted,
      count,
      clientGone: res.destroyed,
      call: undefined,
      session: undefined,
      lastAttempt: undefined,
      reported: undefined,
      outcome: undefined,
      firstVectorAtMs: undefined,
      vectors: [],
    };
    const onClose = () => {
      if (!res.writableFinished) {
        st.clientGone = true;
        st.call?.cancel("client disconnected");
      }
    };
    res.once("close", onClose);
    d.metrics.inFlight.inc();
    let credited = { promptTokens: 0, completionTokens: 0 };
    try {
      const result = await this.attempts(st);
      if (result.kind !== "done") {
        st.outcome = result.error.code === "cancelled" || st.clientGone ? "cancelled" : "failed";
        throw result.error;
      }
      st.outcome = "completed";
      const u = this.credit(st);
      sendJson(res, 200, this.answer(st, u.promptTokens), requestId);
      return 200;
    } finally {
      d.metrics.inFlight.dec();
      res.off("close", onClose);
      const handed = handOffUsage(
        d,
        {
          requestId,
          model: parsed.model,
          startedAtMs,
          prompt: embeddingPromptSize(parsed.embedding, parsed.inputBytes),
          maxTokens: 0,
          call: st.call,
          minerHotkey: st.session?.hotkey,
          reported: st.reported,
          outcome: st.outcome,
          lastAttempt: st.lastAttempt,
          chat: NO_CHAT,
          count,
          billing,
          ttftMs: st.firstVectorAtMs === undefined ? null : st.firstVectorAtMs - startedAtMs,
          finishReason: null,
          streamed: false,
        },
        st.outcome === "completed" ? this.credit(st) : undefined,
      );
      credited = handed.credited;
      access.model = parsed.model;
      if (st.session !== undefined) access.miner = st.session.hotkey;
      access.promptTokens = credited.promptTokens;
      access.completionTokens = 0;
      access.ttftMs = st.firstVectorAtMs === undefined ? null : st.firstVectorAtMs - startedAtMs;
      if (reservation !== undefined) this.reconcile(reservation, credited.promptTokens, requestId);
      if (billing?.ticket !== undefined) this.billing?.finish(billing.ticket, handed.chargedMicros);
    }
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

  /** Holds a metered key's worst case: the inputs' most creditable tokens at the prompt price. */
  private async bill(
    billing: KeyBilling,
    keyId: string,
    parsed: ParsedEmbeddingRequest,
    entry: CatalogueEntry,
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
    const worst = embeddingWorstCase(parsed.embedding, parsed.inputBytes, count);
    const holdMicros = costMicros(worst.promptTokens, 0, prices.pricePromptPerM, prices.priceCompletionPerM);
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

  /** Tries miners offering embeddings for the model until one answers in full. */
  private async attempts(st: EmbeddingState): Promise<Attempt> {
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
      const session = d.routing.choose(d.dispatcher.sessions(), model, tried, "embedding");
      if (session === undefined) break;
      tried.add(session.hotkey);
      let call: InferenceCall;
      try {
        call = d.dispatcher.dispatch(
          session.sessionId,
          model,
          { embedding: st.parsed.embedding },
          {
            deadlineMs: remaining,
          },
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
      st.vectors = new Array(st.parsed.embedding.input.length).fill(undefined);
      const dispatchedAtMs = d.clock();
      const ticket = d.routing.started(session.hotkey, model);
      let result: Attempt | undefined;
      try {
        result = await this.attempt(st, call, () => {
          if (st.firstVectorAtMs !== undefined) return;
          const now = d.clock();
          st.firstVectorAtMs = now;
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
        recordFailedAttempt(
          d,
          { requestId: st.requestId, model, startedAtMs: st.startedAtMs },
          session.hotkey,
          failed,
        );
      }
      st.lastAttempt = undefined;
      st.firstVectorAtMs = undefined;
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
          `No miner can serve embeddings of ${JSON.stringify(model)} right now.`,
          {
            retryAfterMs: d.options.noCapacityRetryAfterMs,
          },
        ),
    };
  }

  /**
   * Collects one miner's vectors. Nothing has reached the user yet, so any
   * failure but the user's own (an invalid request) lets another miner try.
   */
  private async attempt(st: EmbeddingState, call: InferenceCall, firstVector: () => void): Promise<Attempt> {
    for await (const ev of call.events) {
      if (ev.type === "chunk") {
        if (ev.chunk.embeddings.length > 0) firstVector();
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
