import type { LedgerOptions, RecordResult, UsageLedger, UsageQuery, UsageReport } from "../ledger/ledger.js";
import type { UsageEvent } from "../usage/event.js";
import type { BillingStore } from "./billing.js";

/**
 * The miner ledger with billing behind it: `record` counts a batch in the
 * miner ledger and settles the events that carry `billing` (the final
 * event of each request made with an API key) in the billing store, both
 * at once. If either rejects, `record` rejects, so the UsageRecorder spools
 * the whole batch and replays it later; both sides are idempotent (the
 * ledger by origin/seq or request id, billing by key and request id), so
 * the side that had already succeeded counts the replay as duplicates and
 * nothing is charged or counted twice. That is also why the two need not
 * wait for each other: issued together, a ledger and a billing store on
 * one Redis connection share one socket write (`sameWrite`) and one round
 * trip.
 *
 * Every other method is the miner ledger's. `close` closes the miner
 * ledger only: the billing store is shared with the request path (holds)
 * and is closed by whoever opened it.
 */
export class LedgerWithBilling implements UsageLedger {
  readonly #inner: UsageLedger;
  readonly #billing: BillingStore;
  readonly #sameWrite: (issue: () => void) => void;

  /**
   * `sameWrite` runs a function that issues commands so that they leave in
   * one write (corkedWrites for a shared Redis client); default: as is.
   */
  constructor(
    inner: UsageLedger,
    billing: BillingStore,
    sameWrite: (issue: () => void) => void = (f) => f(),
  ) {
    this.#inner = inner;
    this.#billing = billing;
    this.#sameWrite = sameWrite;
  }

  get options(): LedgerOptions {
    return this.#inner.options;
  }

  async record(events: readonly UsageEvent[], nowMs: number): Promise<RecordResult> {
    const billed = events.filter((e) => typeof e === "object" && e !== null && e.billing !== undefined);
    if (billed.length === 0) return this.#inner.record(events, nowMs);
    let recorded: Promise<RecordResult> | undefined;
    let settled: Promise<unknown> | undefined;
    // Both calls write their commands before their first await: corked, one write carries both.
    this.#sameWrite(() => {
      recorded = this.#inner.record(events, nowMs);
      settled = this.#billing.settle(billed, nowMs);
    });
    const [result] = await Promise.all([recorded as Promise<RecordResult>, settled]);
    return result;
  }

  usage(query: UsageQuery): Promise<UsageReport> {
    return this.#inner.usage(query);
  }

  setTier(model: string, multiplier: number, nowMs: number): Promise<void> {
    return this.#inner.setTier(model, multiplier, nowMs);
  }

  removeTier(model: string, nowMs: number): Promise<boolean> {
    return this.#inner.removeTier(model, nowMs);
  }

  tiers(): Promise<ReadonlyMap<string, number>> {
    return this.#inner.tiers();
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

/** The socket an ioredis client writes to, when connected. */
interface StreamHolder {
  readonly stream?: { cork(): void; uncork(): void } | undefined;
}

/**
 * A `sameWrite` for stores sharing one ioredis client: the commands issued
 * inside leave in one socket write (the socket is corked while they are
 * written), so a batch's ledger pipeline and its billing settle cost one
 * system call and one round trip, not two.
 */
export function corkedWrites(redis: StreamHolder): (issue: () => void) => void {
  return (issue) => {
    const stream = redis.stream;
    if (stream === undefined) {
      issue();
      return;
    }
    stream.cork();
    try {
      issue();
    } finally {
      stream.uncork();
    }
  };
}
