import type { ReplicaWait } from "../common/redis-batch.js";
import type { RedisClient } from "../common/redis-connect.js";
import { buildAccountView } from "../router/billing/account-view.js";
import type { AccountSettings, AccountView, CreditEntry } from "../router/billing/billing.js";
import { EmbeddedBilling } from "../router/billing/embedded.js";
import { loadBillingJournal } from "../router/billing/embedded-journal.js";
import { BillingState } from "../router/billing/embedded-state.js";
import { RedisBilling } from "../router/billing/redis.js";
import { DEFAULT_LEDGER_OPTIONS } from "../router/ledger/ledger.js";

/**
 * What `tensorclaw keys` reads and writes of the keys' billing: the part of
 * a BillingStore (router/billing/billing.ts) an operator's command needs,
 * on the router's Redis or on the embedded store's journal file while the
 * router may be running.
 */
export interface KeysBilling {
  /** Opens (or updates) a key's account. */
  configure(keyId: string, settings: AccountSettings, nowMs: number): Promise<void>;
  /** Appends an audited credit entry; false when its id was applied before. */
  credit(entry: CreditEntry): Promise<boolean>;
  /** Each key's balance and spend, in order (a key never configured: unmetered, zero balance). */
  accounts(keyIds: readonly string[], nowMs: number): Promise<AccountView[]>;
  /** A key's credit entries, newest first. */
  entries(keyId: string, limit: number): Promise<CreditEntry[]>;
  /**
   * False when the active holds of running requests cannot be seen from here
   * (the embedded store keeps them in the router's memory): `heldMicros` is
   * then 0 whatever is in flight.
   */
  readonly holdsVisible: boolean;
}

/**
 * Billing on the router's Redis (the same keys and scripts the router uses);
 * with `wait`, each write counts only once that many replicas have it.
 */
export function redisKeysBilling(redis: RedisClient, wait?: ReplicaWait): KeysBilling {
  const store = new RedisBilling(redis, DEFAULT_LEDGER_OPTIONS, undefined, wait);
  return {
    configure: (keyId, settings, nowMs) => store.configure(keyId, settings, nowMs),
    credit: (entry) => store.credit(entry),
    accounts: (keyIds, nowMs) => Promise.all(keyIds.map((id) => store.account(id, nowMs))),
    entries: (keyId, limit) => store.entries(keyId, limit),
    holdsVisible: true,
  };
}

/**
 * Billing in the embedded store's journal at `path`, from outside the
 * router: writes append under the journal's lock (`configureOffline`,
 * `creditOffline`), so a running router picks them up within a second;
 * reads replay the file into a private snapshot and never rewrite it (a
 * compaction is the router's business).
 */
export function offlineKeysBilling(path: string): KeysBilling {
  const snapshot = async (): Promise<BillingState> => {
    const state = new BillingState(DEFAULT_LEDGER_OPTIONS);
    await loadBillingJournal(path, state);
    return state;
  };
  return {
    configure: (keyId, settings, nowMs) => EmbeddedBilling.configureOffline(path, keyId, settings, nowMs),
    credit: (entry) => EmbeddedBilling.creditOffline(path, entry),
    accounts: async (keyIds, nowMs) => {
      // One read of the file for every key.
      const state = await snapshot();
      return keyIds.map((id) => buildAccountView(state.raw(id, nowMs), nowMs, DEFAULT_LEDGER_OPTIONS));
    },
    entries: async (keyId, limit) => {
      const all = (await snapshot()).accounts.get(keyId)?.entries ?? [];
      return all.slice(Math.max(0, all.length - limit)).reverse();
    },
    holdsVisible: false,
  };
}
