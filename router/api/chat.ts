import type { IncomingMessage, ServerResponse } from "node:http";
import { TensorClawError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import { TokenCountMemo } from "../../common/tokens/count-memo.js";
import { DEFAULT_ENCODING, type Encodings, type TokenCount } from "../../common/tokens/encodings.js";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import type { BillingStore } from "../billing/billing.js";
import { costMicros } from "../billing/money.js";
import type { ModelCatalogue } from "../catalogue/catalogue.js";
import type { CatalogueEntry } from "../catalogue/entry.js";
import type { ApiMetrics } from "../metrics.js";
import type { RoutingBook } from "../routing/book.js";
import type { TrafficShapeRecorder } from "../services/traffic-shape.js";
import type { TunnelDispatcher } from "../tunnel/types.js";
import { type ClampedUsage, ESTIMATE_BYTES_PER_TOKEN } from "../usage/clamp.js";
import type { UsageSink } from "../usage/event.js";
import type { AccessRecord } from "./access-log.js";
import { AttemptLoop, attemptFacts, freshAttempts } from "./attempt-loop.js";
import { relayRequest, relayToSink, type SinkRequestState } from "./attempt-relay.js";
import type { CapacityQueue } from "./capacity-queue.js";
import {
  HOLD_TTL_MARGIN_MS,
  KeyBilling,
  priced,
  type RequestBilling,
  worstCaseTokens,
} from "./chat-billing.js";
import { choicesOf, completionCeiling, reservedTokens } from "./chat-ceiling.js";
import { type ChatSink, JsonSink, SseSink } from "./chat-sinks.js";
import {
  creditedUsage,
  type FinishedRequest,
  type HandOff,
  handOffDurably,
  handOffUsage,
} from "./chat-usage.js";
import type { HoldLeaseOptions } from "./hold-leases.js";
import { parseJson, readBody } from "./http.js";
import type { ApiKeyRecord } from "./keys.js";
import { logprobsAsk } from "./openai-logprobs.js";
import { type ParsedChatRequest, parseChatBody } from "./openai-request.js";
import { finishReasonText } from "./openai-response.js";
import { appFromHeaders } from "./openrouter-app.js";
import {
  type OpenRouterAsk,
  parseOpenRouterFields,
  withFirstModel,
  withinMaxPrice,
} from "./openrouter-request.js";
import type { RateLimiter, Reservation } from "./rate-limiter.js";
import { admitKey, closeRequest, countedRequest, type Incoming, openRequest } from "./request-frame.js";
import { parseResponsesBody, parseResponsesChat, type ResponsesEcho } from "./responses-request.js";
import { ResponsesJsonSink, ResponsesSseSink } from "./responses-sink.js";
import type { Attempt } from "./upstream.js";

/** Tuning of the chat endpoint. */
export interface ChatOptions {
  readonly maxBodyBytes: number;
  /** Time budget of one request, all attempts included. */
  readonly requestTimeoutMs: number;
  /** Most miners tried for one request before giving up. */
  readonly maxAttempts: number;
  /** Interval of SSE keep-alive comments while the first token is awaited. */
  readonly keepAliveMs: number;
  /**
   * Completion ceiling per choice credited and held when the caller sets no
   * limit and the catalogue knows no context length (chat-ceiling.ts);
   * never sent upstream.
   */
  readonly defaultMaxTokens: number;
  readonly userSalt: string;
  /** `retry-after` sent with 503 when no miner can take the request. */
  readonly noCapacityRetryAfterMs: number;
  /** Requests waiting for a busy model's free slot, all models together (`--max-queue`; 0: none wait). */
  readonly maxQueue: number;
  /** Longest wait for a free slot, ms, within the request's deadline (`--queue-timeout-ms`; 0: none wait). */
  readonly queueTimeoutMs: number;
  /** How long a model stays "known" (503, not 404) after its last miner left. */
  readonly modelMemoryMs: number;
  /**
   * For this long after the router starts, any model id counts as known
   * (503 with retry-after while no miner offers it, not 404): a restart
   * forgets which models were offered, and miners take a few seconds to
   * reconnect. 0 turns it off.
   */
  readonly startupGraceMs: number;
  /**
   * Longest a completed answer's end waits for its usage event to be
   * durable (in the ledger or the spool): normally one ledger round trip;
   * the bound keeps a slow Redis from holding answers (chat-usage.ts
   * handOffDurably).
   */
  readonly usageDurableWaitMs: number;
}

/** What the chat endpoint needs from the router. */
export interface ChatDeps {
  readonly dispatcher: TunnelDispatcher;
  readonly usage: UsageSink;
  readonly limiter: RateLimiter;
  readonly metrics: ApiMetrics;
  readonly clock: () => number;
  readonly logger: Logger;
  readonly options: ChatOptions;
  /** The model catalogue in force (read per request: it changes while the router runs). */
  readonly catalogue: () => ModelCatalogue;
  /** The loaded token encodings (the router loads each catalogue tokenizer ahead of use). */
  readonly encodings: Encodings;
  /** Chooses the miner for each attempt and learns from how attempts end (one per router). */
  readonly routing: RoutingBook;
  /**
   * Where requests wait while every miner of their model is busy (one per
   * router, shared by every endpoint: createApiHandler makes it).
   */
  readonly queue?: CapacityQueue;
  /** Where the shapes of user requests are counted for validators (GetTrafficShape). */
  readonly trafficShape?: TrafficShapeRecorder;
  /**
   * API keys' balances, holds and spend (router/billing). Undefined: no
   * billing at all (no holds, no `billing` on usage events).
   */
  readonly billing?: BillingStore;
  /** Lease timings of metered keys' holds (hold-leases.ts; tests shorten them). */
  readonly billingLeases?: HoldLeaseOptions;
  /** Prompt token counts of long messages, remembered per API key; default: a memo of the default size. */
  readonly promptCounts?: TokenCountMemo;
}

/** Which API a request came in on: chat completions, or the Responses API translated onto it. */
export type ChatApi = "chat" | "responses";

/** The caller, once authenticated (undefined account with --no-auth). */
export interface Caller {
  readonly key: ApiKeyRecord | undefined;
}

interface RequestState extends SinkRequestState {
  /** The request; its `model` is the one being tried (a `models` fallback moves it on). */
  parsed: ParsedChatRequest;
  /** The models to try, in order (one unless the caller gave OpenRouter's `models`). */
  readonly models: readonly CatalogueEntry[];
  /** What a `/v1/responses` answer echoes of its request; undefined for chat completions. */
  readonly responses: ResponsesEcho | undefined;
  /** Completion tokens per choice credited and held at most (chat-ceiling.ts), for the model tried. */
  ceiling: number;
  /** The credited usage, once computed for the response (tokenizing is done once). */
  credited: ClampedUsage | undefined;
  /** The usage hand-off, once done (before the end of a completed answer, else when the request ends). */
  handed?: HandOff;
  /** How the key is billed (at the prices of the model being tried); undefined without a key or billing. */
  billing: RequestBilling | undefined;
  /** The prompt's token count made for the hold, and the encoding it was made with. */
  readonly countedPrompt: { readonly count: TokenCount; readonly tokens: number } | undefined;
  /** The last finish reason a chunk carried. */
  finishReason: FinishReason;
}

/** A catalogue entry's prices, as billing reads them. */
function pricesOf(e: CatalogueEntry): RequestBilling["prices"] {
  return { pricePromptPerM: e.pricePromptPerM, priceCompletionPerM: e.priceCompletionPerM };
}

/** `POST /v1/chat/completions`. Remembers models recently served, to tell 503 from 404. */
export class ChatEndpoint {
  private readonly lastSeen = new Map<string, number>();
  /** Billing of metered keys (undefined: billing off); the account endpoint reads its leases. */
  readonly billing: KeyBilling | undefined;

  /** When this endpoint started (the clock's ms), for `startupGraceMs`. */
  private readonly startedAtMs: number;
  /** A conversation's earlier messages, counted on an earlier turn of the same key. */
  private readonly promptCounts: TokenCountMemo;

  constructor(private readonly deps: ChatDeps) {
    this.startedAtMs = deps.clock();
    this.promptCounts = deps.promptCounts ?? new TokenCountMemo();
    this.billing =
      deps.billing === undefined
        ? undefined
        : new KeyBilling(deps.billing, deps.logger, undefined, deps.billingLeases);
  }

  /** Serves one request; resolves to the HTTP status (200 for streams that started). */
  handle(
    req: IncomingMessage,
    res: ServerResponse,
    requestId: string,
    caller: Caller,
    access: AccessRecord = {},
    api: ChatApi = "chat",
  ): Promise<number> {
    return countedRequest(this.deps, (label) =>
      this.serve({ req, res, requestId, caller, access }, label, api),
    );
  }

  private async serve(inc: Incoming, label: { model: string }, api: ChatApi): Promise<number> {
    const d = this.deps;
    const { req, res, requestId, caller, access } = inc;
    const startedAtMs = d.clock();
    const raw = parseJson(await readBody(req, d.options.maxBodyBytes));
    // The Responses API is a translation: from here on it is a chat request like any other.
    const responses = api === "responses" ? parseResponsesBody(raw) : undefined;
    const body = responses?.chatBody ?? raw;
    const or = parseOpenRouterFields(body);
    const opts = { userSalt: d.options.userSalt, account: caller.key?.id ?? "anonymous" };
    const first = withFirstModel(body, or);
    const asked = responses === undefined ? parseChatBody(first, opts) : parseResponsesChat(first, opts);
    // The models to try, in order (`model`, then OpenRouter's `models` fallbacks), as catalogue entries.
    const entries = this.resolveModels(or?.models ?? [asked.model], or?.maxPrice, startedAtMs);
    const entry = entries[0] as CatalogueEntry;
    const parsed = {
      ...asked,
      model: entry.id,
      // OpenRouter's `usage: {include: true}`: a stream ends with its usage chunk too.
      includeUsage: asked.includeUsage || (asked.stream && or?.includeUsage === true),
    };
    label.model = parsed.model;
    const app = appFromHeaders(req.headers);
    if (app !== undefined) access.app = app;
    const ceiling = completionCeiling(parsed.chat, entry.contextLength, d.options.defaultMaxTokens);
    const reserved = reservedTokens(parsed.chat, parsed.prompt);
    const key = caller.key;
    let reservation: Reservation | undefined;
    let billing: RequestBilling | undefined;
    let countedPrompt: RequestState["countedPrompt"];
    if (key !== undefined) {
      const kb = this.billing;
      const hold = kb && (() => this.bill(kb, key.id, parsed, entries, startedAtMs));
      const admitted = await admitKey(d, res, key, reserved, requestId, startedAtMs, hold);
      reservation = admitted.reservation;
      if (admitted.held !== undefined) {
        billing = app === undefined ? admitted.held.billing : { ...admitted.held.billing, app };
        countedPrompt = admitted.held.countedPrompt;
      }
    }
    // Accepted user requests only: probes never pass through here, so validators copy users, not themselves.
    d.trafficShape?.record(
      body,
      parsed.model,
      Math.ceil(parsed.prompt.bytes / ESTIMATE_BYTES_PER_TOKEN),
      startedAtMs,
    );
    const st: RequestState = {
      parsed,
      models: entries,
      responses: responses?.echo,
      ceiling,
      outcome: undefined,
      credited: undefined,
      billing,
      countedPrompt,
      finishReason: FinishReason.FINISH_REASON_UNSPECIFIED,
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
          this.credit(st);
          return handOffDurably(d, d.options.usageDurableWaitMs, st, (dd) =>
            handOffUsage(dd, this.finished(st), st.credited),
          );
        },
      );
    } finally {
      close();
      const handed = st.handed ?? handOffUsage(d, this.finished(st), st.credited);
      closeRequest(
        d,
        this.billing,
        {
          requestId,
          model: st.parsed.model,
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

  /**
   * Decides how a key's request is billed and, for a metered key, holds its
   * worst-case cost before any miner is tried. An unmetered key whose
   * settings are remembered costs no wait. Throws `insufficient_quota`
   * (402) when the hold is refused, `unavailable` (503) when the store
   * cannot bill a metered key now.
   */
  private async bill(
    billing: KeyBilling,
    keyId: string,
    parsed: ParsedChatRequest,
    entries: readonly CatalogueEntry[],
    nowMs: number,
  ): Promise<{ billing: RequestBilling; countedPrompt: RequestState["countedPrompt"] }> {
    let settings = billing.settings(keyId, nowMs);
    if (settings instanceof Promise) settings = await settings;
    const entry = entries[0] as CatalogueEntry;
    const prices = pricesOf(entry);
    const metered = settings?.metered === true;
    // With `models` fallbacks, the hold covers the costliest of them: whichever serves, it is covered.
    if (!metered || !entries.some((e) => priced(pricesOf(e)))) {
      return { billing: { keyId, metered, paid: false, prices, holdMicros: 0 }, countedPrompt: undefined };
    }
    let holdMicros = 0;
    let worst: ReturnType<typeof worstCaseTokens> | undefined;
    const count = this.deps.encodings.get(entry.tokenizer);
    for (const e of entries) {
      const c = this.deps.encodings.get(e.tokenizer);
      // Every choice may run to the model's ceiling: the hold is the true worst case.
      const ceiling = completionCeiling(parsed.chat, e.contextLength, this.deps.options.defaultMaxTokens);
      const counter = c && this.promptCounts.counter(c, keyId);
      const w = worstCaseTokens(parsed.chat, parsed.prompt, ceiling, choicesOf(parsed.chat), counter);
      if (e === entry) worst = w;
      const p = pricesOf(e);
      holdMicros = Math.max(
        holdMicros,
        costMicros(w.promptTokens, w.completionTokens, p.pricePromptPerM, p.priceCompletionPerM),
      );
    }
    const ticket = await billing.hold(
      keyId,
      holdMicros,
      this.deps.clock,
      this.deps.options.requestTimeoutMs + HOLD_TTL_MARGIN_MS,
    );
    return {
      billing: { keyId, metered: true, paid: priced(prices), prices, holdMicros, ticket },
      countedPrompt:
        count === undefined || worst?.countedPrompt === undefined
          ? undefined
          : { count, tokens: worst.countedPrompt },
    };
  }

  /**
   * The catalogue entries of the models to try, in order, each once. Only
   * catalogue models are routed, under their catalogue id (an alias is
   * another name for it). A catalogue model exists even while no miner
   * serves it (503, not 404); any other id of an open router exists only
   * while miners offer it (or did, lately). Ids that do not exist, or are
   * priced above `provider.max_price`, are skipped; 404 when none is left.
   */
  private resolveModels(
    ids: readonly string[],
    maxPrice: OpenRouterAsk["maxPrice"],
    nowMs: number,
  ): CatalogueEntry[] {
    const catalogue = this.deps.catalogue();
    const out: CatalogueEntry[] = [];
    let tooDear = false;
    for (const id of ids) {
      const entry = catalogue.resolve(id);
      if (entry === undefined || out.some((e) => e.id === entry.id)) continue;
      if (!catalogue.lists(entry.id) && !this.modelKnown(entry.id, nowMs)) continue;
      if (!withinMaxPrice(maxPrice, entry)) {
        tooDear = true;
        continue;
      }
      out.push(entry);
    }
    if (out.length > 0) return out;
    if (tooDear) {
      throw new TensorClawError(
        "invalid_request",
        "No model of the request is priced within `provider.max_price`.",
        { param: "provider.max_price" },
      );
    }
    const names = ids.map((m) => JSON.stringify(m)).join(", ");
    throw new TensorClawError(
      "model_not_found",
      ids.length === 1 ? `The model ${names} does not exist.` : `None of the models ${names} exists.`,
      { param: ids.length === 1 ? "model" : "models" },
    );
  }

  /** Whether a model outside the catalogue's list is offered now, or was within `modelMemoryMs`. */
  private modelKnown(model: string, nowMs: number): boolean {
    if (this.deps.dispatcher.sessionsOffering(model).length > 0) {
      this.lastSeen.set(model, nowMs);
      return true;
    }
    const seen = this.lastSeen.get(model);
    if (seen !== undefined && nowMs - seen <= this.deps.options.modelMemoryMs) return true;
    // Just restarted: the models offered before are forgotten and their miners still reconnecting.
    if (nowMs - this.startedAtMs < this.deps.options.startupGraceMs) return true;
    this.lastSeen.delete(model);
    return false;
  }

  /** The sink a request's answer goes to: SSE events when it asked to stream, else one JSON body. */
  private sink(res: ServerResponse, st: RequestState): ChatSink {
    if (st.responses !== undefined) {
      const r = {
        requestId: st.requestId,
        createdAt: Math.floor(st.startedAtMs / 1000),
        model: st.parsed.model,
        echo: st.responses,
      };
      return st.parsed.stream
        ? new ResponsesSseSink(res, r, this.deps.options.keepAliveMs)
        : new ResponsesJsonSink(res, r);
    }
    const ident = {
      id: `chatcmpl-${st.requestId}`,
      created: Math.floor(st.startedAtMs / 1000),
      model: st.parsed.model,
    };
    const logprobs = logprobsAsk(st.parsed.chat, st.ceiling);
    return st.parsed.stream
      ? new SseSink(res, st.requestId, ident, st.parsed.includeUsage, this.deps.options.keepAliveMs, logprobs)
      : new JsonSink(res, st.requestId, ident, logprobs, choicesOf(st.parsed.chat));
  }

  /**
   * Tries the request's models in order (OpenRouter's `models`): the next
   * one only when the last failed before any output reached the user
   * (no capacity, every miner failed, or its backend refused the request),
   * and while the user is there and the deadline allows. The answer names
   * the model that served it; usage is recorded, and the key charged, under
   * that model. Each model's miners are tried by the shared attempt loop.
   */
  private async attempts(st: RequestState, sink: ChatSink): Promise<Attempt> {
    const loop: AttemptLoop = new AttemptLoop(this.deps, st, {
      kind: "chat",
      work: "",
      body: () => st.parsed.chat,
      relay: (call) =>
        relayToSink(st, call, sink, loop, st.parsed.model, this.deps.options.noCapacityRetryAfterMs, (c) => {
          if (c.finishReason !== FinishReason.FINISH_REASON_UNSPECIFIED) st.finishReason = c.finishReason;
        }),
      outputSent: () => sink.chunks > 0,
    });
    try {
      const deadline = st.startedAtMs + this.deps.options.requestTimeoutMs;
      // No error is made up front: an Error costs a stack trace, and a request always has a model.
      let result: Attempt | undefined;
      for (const entry of st.models) {
        if (result !== undefined) {
          const code = result.kind === "done" ? undefined : result.error.code;
          const over =
            sink.chunks > 0 || st.clientGone || code === "cancelled" || this.deps.clock() >= deadline;
          if (result.kind === "done" || over) return result;
          // The last model's last attempt (one its backend refused) is over: recorded now, not at the end.
          loop.leave(st.parsed.model);
          this.switchModel(st, sink, entry);
          loop.waiting();
        }
        result = await loop.tryModel(st.parsed.model);
      }
      return result ?? { kind: "failed", error: new TensorClawError("no_capacity") };
    } finally {
      loop.close();
    }
  }

  /** Moves a request on to its next fallback model, before any output: its name, its prices. */
  private switchModel(st: RequestState, sink: ChatSink, entry: CatalogueEntry): void {
    st.parsed = { ...st.parsed, model: entry.id };
    st.ceiling = completionCeiling(st.parsed.chat, entry.contextLength, this.deps.options.defaultMaxTokens);
    sink.serving(entry.id);
    const b = st.billing;
    if (b !== undefined) {
      const prices = pricesOf(entry);
      st.billing = { ...b, prices, paid: b.metered && priced(prices) };
    }
  }

  /** The credited usage of a request, computed once. */
  private credit(st: RequestState): ClampedUsage {
    st.credited ??= creditedUsage(this.finished(st));
    return st.credited;
  }

  private finished(st: RequestState): FinishedRequest {
    const tokenizer = this.deps.catalogue().resolve(st.parsed.model)?.tokenizer ?? DEFAULT_ENCODING;
    const count = this.deps.encodings.get(tokenizer);
    const counted = st.countedPrompt;
    return {
      chat: st.parsed.chat,
      count,
      promptCount: count && this.promptCounts.counter(count, st.account),
      countedPrompt: counted !== undefined && counted.count === count ? counted.tokens : undefined,
      billing: st.billing,
      // A completed answer without a reason from the miner ends as the JSON answer says: "stop".
      finishReason: finishReasonText(st.finishReason) ?? (st.outcome === "completed" ? "stop" : null),
      streamed: st.parsed.stream,
      model: st.parsed.model,
      prompt: st.parsed.prompt,
      maxTokens: st.ceiling,
      outcome: st.outcome,
      ...attemptFacts(st),
    };
  }
}
