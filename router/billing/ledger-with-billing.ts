import type { LedgerOptions, RecordResult, UsageLedger, UsageQuery, UsageReport } from "../ledger/ledger.js";
import type { UsageEvent } from "../usage/event.js";
import type { BillingStore } from "./billing.js";

/**
 * The miner ledger with billing behind it: `record` counts a batch in the
 * miner ledger, then settles the events that carry `billing` (the final
 * event of each request made with an API key) in the billing store. If
 * either rejects, `record` rejects, so the UsageRecorder spools the whole
 * batch and replays it later; both sides are idempotent (the ledger by
 * origin/seq or request id, billing by key and request id), so the side
 * that had already succeeded counts the replay as duplicates and nothing
 * is charged or counted twice.
 *
 * Every other method is the miner ledger's. `close` closes the miner
 * ledger only: the billing store is shared with the request path (holds)
 * and is closed by whoever opened it.
 */
export class LedgerWithBilling implements UsageLedger {
  readonly #inner: UsageLedger;
  readonly #billing: BillingStore;

  constructor(inner: UsageLedger, billing: BillingStore) {
    this.#inner = inner;
    this.#billing = billing;
  }

  get options(): LedgerOptions {
    return this.#inner.options;
  }

  async record(events: readonly UsageEvent[], nowMs: number): Promise<RecordResult> {
    const result = await this.#inner.record(events, nowMs);
    const billed = events.filter((e) => typeof e === "object" && e !== null && e.billing !== undefined);
    if (billed.length > 0) await this.#billing.settle(billed, nowMs);
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
