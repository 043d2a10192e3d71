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
}

/** Where finished requests go. Never throws and never blocks the request path. */
export interface UsageSink {
  record(event: UsageEvent): void;
}
