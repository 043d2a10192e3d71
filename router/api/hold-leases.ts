import { randomBytes } from "node:crypto";
import type { Logger } from "../../common/logger.js";
import type { BillingStore, HoldResult } from "../billing/billing.js";
import type { Micros } from "../billing/money.js";

/**
 * Holds served from leases, so a metered key's request does not wait on the
 * billing store (README, For API users).
 *
 * A request's worst-case cost still has to be reserved before any miner is
 * tried, but asking the store once per request cost more than the rest of
 * the billing together (a Redis round trip per request). Instead, the
 * router holds a larger amount in the store — a *lease*, itself an ordinary
 * hold with its own id — and hands out requests' holds from it in memory:
 *
 * - A lease is asked for `LEASE_REQUESTS` times the request's worst case,
 *   or, when the key cannot cover that, for whatever it can (at least the
 *   request's own hold): so a small balance is still used to the last
 *   micro, and 100 concurrent requests against a balance that covers 10
 *   still run exactly 10.
 * - A request draws its hold from the current lease; what it finally costs
 *   stays drawn, the rest returns to the lease. Its usage event names the
 *   lease (`holdId`), and settling it takes its cost off the balance and the
 *   same amount off the lease's hold in the store, so the store's view
 *   (balance − holds) stays exact while the lease lives.
 * - A lease takes new requests for `fillMs`, then the next request opens a
 *   new one. A lease that takes no more requests is released once its last
 *   request has ended and `graceMs` has passed (time for that request's
 *   charge to reach the store); one never released expires in the store by
 *   itself (its ttl covers its requests' deadlines).
 * - Only one lease per key is asked for at a time; requests arriving
 *   meanwhile wait for it.
 *
 * What a lease holds beyond its requests is unavailable to the key's other
 * routers while it lives: at most `LEASE_REQUESTS` requests' worth, for at
 * most `fillMs` plus the time its requests take.
 */

/** How many worst-case requests one lease covers (when the key can afford it). */
export const LEASE_REQUESTS = 32;
/** How long a lease takes new requests. */
export const DEFAULT_LEASE_FILL_MS = 5000;
/** How long an ended lease waits for its requests' charges before it is released. */
export const DEFAULT_LEASE_GRACE_MS = 1000;

/** What a request holds: the lease it drew from and how much. */
export interface HoldTicket {
  /** The store hold the request drew from (a lease id). */
  readonly holdId: string;
  readonly amountMicros: Micros;
  readonly lease: Lease;
}

/** One lease: a store hold shared by requests of one key. */
export class Lease {
  /** Held by requests in flight plus what finished requests cost. */
  drawn = 0;
  /** Requests in flight. */
  inFlight = 0;
  /** True once it takes no new requests. */
  closed = false;
  /** True once its release is scheduled. */
  releasing = false;

  constructor(
    readonly keyId: string,
    readonly id: string,
    readonly sizeMicros: Micros,
    readonly fillUntilMs: number,
  ) {}

  /** Whether `amount` can be drawn at `nowMs`. */
  fits(amount: Micros, nowMs: number): boolean {
    return !this.closed && nowMs < this.fillUntilMs && this.sizeMicros - this.drawn >= amount;
  }
}

interface KeyLeases {
  current: Lease | undefined;
  /** Every lease not yet released (the current one included). */
  readonly live: Set<Lease>;
  /** The store call opening the next lease, if one is under way. */
  opening: Promise<HoldResult> | undefined;
}

/** Settings of {@link HoldLeases}. */
export interface HoldLeaseOptions {
  readonly fillMs?: number;
  readonly graceMs?: number;
  /** Lease id prefix (default: random per process, so replicas never share an id). */
  readonly idPrefix?: string;
}

/** The leases of every metered key this router serves. */
export class HoldLeases {
  readonly #store: BillingStore;
  readonly #logger: Logger;
  readonly #fillMs: number;
  readonly #graceMs: number;
  readonly #prefix: string;
  readonly #keys = new Map<string, KeyLeases>();
  #next = 0;

  constructor(store: BillingStore, logger: Logger, opts: HoldLeaseOptions = {}) {
    this.#store = store;
    this.#logger = logger;
    this.#fillMs = opts.fillMs ?? DEFAULT_LEASE_FILL_MS;
    this.#graceMs = opts.graceMs ?? DEFAULT_LEASE_GRACE_MS;
    this.#prefix = opts.idPrefix ?? `lease:${randomBytes(6).toString("hex")}`;
  }

  /**
   * Draws `amountMicros` for one request of `keyId`, opening a lease when the
   * current one cannot cover it. Resolves to the ticket, or to the store's
   * refusal when the key cannot cover even this request. Rejects when the
   * store fails. `ttlMs` is how long the request may run (a lease's store
   * hold lives its fill time longer).
   */
  async draw(
    keyId: string,
    amountMicros: Micros,
    nowMs: () => number,
    ttlMs: number,
  ): Promise<HoldTicket | Extract<HoldResult, { ok: false }>> {
    let k = this.#keys.get(keyId);
    if (k === undefined) {
      k = { current: undefined, opening: undefined, live: new Set() };
      this.#keys.set(keyId, k);
    }
    for (;;) {
      const lease = k.current;
      if (lease?.fits(amountMicros, nowMs())) {
        lease.drawn += amountMicros;
        lease.inFlight += 1;
        return { holdId: lease.id, amountMicros, lease };
      }
      if (k.opening !== undefined) {
        // Another request of this key is opening a lease: use it, if it fits.
        await k.opening.catch(() => undefined);
        continue;
      }
      const opening = this.#open(k, keyId, amountMicros, nowMs(), ttlMs);
      k.opening = opening;
      let r: HoldResult;
      try {
        r = await opening;
      } finally {
        k.opening = undefined;
      }
      if (!r.ok) return r;
    }
  }

  /**
   * Ends a request's draw: `costMicros` (what it is charged, at most its
   * hold; 0 when it records no usage) stays drawn, the rest returns.
   */
  finish(t: HoldTicket, costMicros: Micros): void {
    const lease = t.lease;
    lease.drawn -= t.amountMicros - Math.min(costMicros, t.amountMicros);
    lease.inFlight -= 1;
    this.#releaseIfDone(lease);
  }

  /**
   * What this router's live leases of `keyId` hold beyond their requests:
   * held in the store, but free for the key's next requests here. The
   * account endpoint counts it as available, so a key's remaining credit
   * does not dip while a lease lives.
   */
  unusedMicros(keyId: string): Micros {
    let unused = 0;
    for (const lease of this.#keys.get(keyId)?.live ?? []) unused += lease.sizeMicros - lease.drawn;
    return unused;
  }

  /** Opens a lease for `keyId` big enough for `amount` (and more when the key can afford it). */
  async #open(
    k: KeyLeases,
    keyId: string,
    amount: Micros,
    nowMs: number,
    ttlMs: number,
  ): Promise<HoldResult> {
    const hold = (size: Micros, id: string) =>
      this.#store.hold({ keyId, requestId: id, amountMicros: size, nowMs, ttlMs: ttlMs + this.#fillMs });
    let size = amount * LEASE_REQUESTS;
    let id = this.#newId();
    let r = await hold(size, id);
    if (!r.ok && r.availableMicros >= amount && size > amount) {
      // Not a whole lease's worth: take what the key has, if it covers this request.
      size = r.availableMicros;
      id = this.#newId();
      r = await hold(size, id);
    }
    if (!r.ok) return r;
    const old = k.current;
    const lease = new Lease(keyId, id, size, nowMs + this.#fillMs);
    k.current = lease;
    k.live.add(lease);
    if (old !== undefined) this.#close(old);
    setTimeout(() => this.#close(lease), this.#fillMs).unref();
    return r;
  }

  /** Stops a lease taking requests; it is released once its requests have ended. */
  #close(lease: Lease): void {
    if (lease.closed) return;
    lease.closed = true;
    const k = this.#keys.get(lease.keyId);
    if (k?.current === lease) k.current = undefined;
    this.#releaseIfDone(lease);
  }

  #newId(): string {
    this.#next += 1;
    return `${this.#prefix}:${this.#next}`;
  }

  /** Releases a closed lease once its last request has ended, after the grace. */
  #releaseIfDone(lease: Lease): void {
    if (!lease.closed || lease.inFlight > 0 || lease.releasing) return;
    lease.releasing = true;
    setTimeout(() => {
      const k = this.#keys.get(lease.keyId);
      k?.live.delete(lease);
      if (k !== undefined && k.live.size === 0 && k.opening === undefined) this.#keys.delete(lease.keyId);
      this.#store.release(lease.keyId, lease.id, Date.now()).catch((err: unknown) => {
        this.#logger.warn(
          { err, keyId: lease.keyId, lease: lease.id },
          "lease release failed; it expires by itself",
        );
      });
    }, this.#graceMs).unref();
  }
}
