/** How a request that produced usage ended. */
export type UsageOutcome = "completed" | "failed" | "cancelled";

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
}

/** Where finished requests go. Never throws and never blocks the request path. */
export interface UsageSink {
  record(event: UsageEvent): void;
}
