/**
 * How one attempt of a user request on one miner ended (README, Scoring):
 * - `completed`: served; its credited tokens count.
 * - `cancelled`: the user went away; what was relayed before counts; neutral for the success rate.
 * - `failed`: failed after output reached the user (broken stream, protocol violation); credits nothing.
 * - `failed_early`: failed before any output (the request was retried elsewhere, or failed); credits nothing.
 * - `cut`: the request's deadline passed while this miner held it; credits nothing.
 */
export type UsageOutcome = "completed" | "cancelled" | "failed" | "failed_early" | "cut";

/** Every outcome. */
export const USAGE_OUTCOMES: readonly UsageOutcome[] = [
  "completed",
  "cancelled",
  "failed",
  "failed_early",
  "cut",
];

/**
 * One finished user request, as handed from the Business API to the ledger.
 * Token counts are already bounded by what the router relayed.
 */
export interface UsageEvent {
  // UsageSequencer (sequence.ts) copies these fields one by one: add
  // a new one there too.
  /**
   * Router-wide unique id (the `x-request-id`); the ledger's idempotency key
   * for events without `origin`/`seq`.
   */
  readonly requestId: string;
  readonly minerHotkey: string;
  readonly model: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly outcome: UsageOutcome;
  readonly startedAtMs: number;
  /** The ledger buckets the event by this time. */
  readonly finishedAtMs: number;
  /**
   * The router process that emitted the event: a random id drawn once per
   * process start (see sequence.ts). With `seq` it is the ledger's
   * idempotency key (about one bit of ledger memory per event). Absent in
   * events spooled by older routers: those are deduplicated by `requestId`.
   * Both or neither are set.
   */
  readonly origin?: string;
  /** Per (origin, miner hotkey) counter from 0, in hand-off order. */
  readonly seq?: number;
  /**
   * True when the tokens were paid for: the request's API key is metered
   * and the model has a non-zero price. Only paid tokens earn business
   * points (README, Scoring), unless the router counts free traffic (a dev
   * setting). Absent (older routers, probes' siblings) means free.
   */
  readonly paid?: boolean;
  /**
   * Set on the event that ends a request made with an API key (the last
   * attempt's): what the key is charged and what its generation record
   * says. Earlier attempts of the same request carry none.
   */
  readonly billing?: EventBilling;
}

/**
 * The app a request came from, as its `HTTP-Referer` and `X-Title` headers
 * named it (router/api/openrouter-app.ts): cleaned, bounded, no tabs or
 * control characters. At least one is set.
 */
export interface RequestApp {
  readonly referer?: string;
  readonly title?: string;
}

/** The billing side of a request's final usage event (router/billing/billing.ts settles it). */
export interface EventBilling {
  readonly keyId: string;
  /** Credited tokens at the catalogue's prices, in micros (router/billing/money.ts), rounded up. */
  readonly costMicros: number;
  /** The hold placed on the key's balance before dispatch (0: none, an unmetered key). */
  readonly holdMicros: number;
  /**
   * The store hold this request's hold was drawn from (a lease, see
   * router/api/hold-leases.ts): settling takes the cost off that hold.
   * Absent: the request's own hold, under its request id, which settling
   * removes.
   */
  readonly holdId?: string;
  /** First token after the request started, ms; null when none came. */
  readonly ttftMs: number | null;
  /** OpenAI finish reason of the answer, or null. */
  readonly finishReason: string | null;
  readonly streamed: boolean;
  /** The app the request named (`HTTP-Referer`, `X-Title`), for its generation record. */
  readonly app?: RequestApp;
}

/** Where finished requests go. Never throws and never blocks the request path. */
export interface UsageSink {
  record(event: UsageEvent): void;
  /**
   * Records `event` as `record` does, and resolves once it is durable: in
   * the ledger or in the durable spool (or given up on: an event the sink
   * drops resolves too, and is counted as dropped). Never rejects. The API
   * awaits it before the end of an answer, so a router killed right after
   * has already counted what its user received. Absent: nothing to wait for.
   */
  recordDurably?(event: UsageEvent): Promise<void>;
}
