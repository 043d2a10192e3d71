import type {
  AccountSettings,
  AccountView,
  BillingStore,
  CreditEntry,
  DaySpend,
  GenerationRecord,
  HoldRequest,
  HoldResult,
  SettleResult,
} from "../../router/billing/billing.js";
import type { UsageEvent } from "../../router/usage/event.js";

/** One call the router made on the store. */
export interface BillingCall {
  readonly method: keyof BillingStore;
  readonly keyId: string | undefined;
  readonly requestId: string | undefined;
  /** A hold's amount. */
  readonly amountMicros?: number;
}

/**
 * A real billing store (embedded or Redis) with every call the router makes
 * written down, so a test can wait for a call made in the background (a
 * hold's release) and for every call to have finished, instead of polling.
 */
export class WatchedBilling implements BillingStore {
  readonly calls: BillingCall[] = [];
  readonly #inner: BillingStore;
  readonly #pending = new Set<Promise<unknown>>();
  #listeners: (() => void)[] = [];

  constructor(inner: BillingStore) {
    this.#inner = inner;
  }

  /** Resolves once every call made so far has finished (settled or failed). */
  async idle(): Promise<void> {
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  /** Resolves once `cond()` holds, re-checked after every call starts and ends. */
  until(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners = this.#listeners.filter((l) => l !== check);
        reject(new Error(`billing store: condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.#listeners = this.#listeners.filter((l) => l !== check);
        resolve();
      };
      this.#listeners.push(check);
    });
  }

  /** Calls of one method. */
  of(method: keyof BillingStore): BillingCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  #track<T>(
    method: keyof BillingStore,
    keyId: string | undefined,
    requestId: string | undefined,
    p: Promise<T>,
    amountMicros?: number,
  ) {
    this.calls.push(
      amountMicros === undefined ? { method, keyId, requestId } : { method, keyId, requestId, amountMicros },
    );
    const done = p.finally(() => {
      this.#pending.delete(done);
      this.#notify();
    });
    // The caller handles the outcome; this copy only tracks it.
    done.catch(() => {});
    this.#pending.add(done);
    this.#notify();
    return p;
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }

  configure(keyId: string, settings: AccountSettings, nowMs: number): Promise<void> {
    return this.#track("configure", keyId, undefined, this.#inner.configure(keyId, settings, nowMs));
  }
  settings(keyId: string): Promise<AccountSettings | undefined> {
    return this.#track("settings", keyId, undefined, this.#inner.settings(keyId));
  }
  credit(entry: CreditEntry): Promise<boolean> {
    return this.#track("credit", entry.keyId, undefined, this.#inner.credit(entry));
  }
  hold(h: HoldRequest): Promise<HoldResult> {
    return this.#track("hold", h.keyId, h.requestId, this.#inner.hold(h), h.amountMicros);
  }
  release(keyId: string, requestId: string, nowMs: number): Promise<void> {
    return this.#track("release", keyId, requestId, this.#inner.release(keyId, requestId, nowMs));
  }
  settle(events: readonly UsageEvent[], nowMs: number): Promise<SettleResult> {
    const one = events.length === 1 ? events[0] : undefined;
    return this.#track("settle", one?.billing?.keyId, one?.requestId, this.#inner.settle(events, nowMs));
  }
  account(keyId: string, nowMs: number): Promise<AccountView> {
    return this.#track("account", keyId, undefined, this.#inner.account(keyId, nowMs));
  }
  generation(keyId: string, requestId: string, nowMs: number): Promise<GenerationRecord | undefined> {
    return this.#track("generation", keyId, requestId, this.#inner.generation(keyId, requestId, nowMs));
  }
  recentGenerations(keyId: string, limit: number, nowMs: number): Promise<GenerationRecord[]> {
    return this.#track(
      "recentGenerations",
      keyId,
      undefined,
      this.#inner.recentGenerations(keyId, limit, nowMs),
    );
  }
  daily(keyId: string, nowMs: number): Promise<DaySpend[]> {
    return this.#track("daily", keyId, undefined, this.#inner.daily(keyId, nowMs));
  }
  entries(keyId: string, limit: number): Promise<CreditEntry[]> {
    return this.#track("entries", keyId, undefined, this.#inner.entries(keyId, limit));
  }
  cursor(name: string): Promise<string | undefined> {
    return this.#track("cursor", undefined, undefined, this.#inner.cursor(name));
  }
  setCursor(name: string, value: string): Promise<void> {
    return this.#track("setCursor", undefined, undefined, this.#inner.setCursor(name, value));
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}
