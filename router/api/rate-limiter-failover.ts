import type { Cluster } from "ioredis";
import { TensorClawError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { RedisClient } from "../../common/redis-connect.js";
import { keySlot } from "../../common/redis-slot.js";
import {
  EmbeddedRateLimiter,
  type RateLimiter,
  type RateLimits,
  RedisRateLimiter,
  type Reservation,
  type ReserveResult,
  reconcileMatters,
} from "./rate-limiter.js";

/** Least time between two checks of the primary during an outage, by default. */
export const DEFAULT_PROBE_INTERVAL_MS = 1000;

/** What a failover limiter is made of. */
export interface FailoverRateLimiterOptions {
  /** The shared limiter (Redis). */
  readonly primary: RateLimiter;
  /** The in-process limiter that holds the limits while the primary is unreachable. */
  readonly fallback: RateLimiter;
  /**
   * Resolves once the primary's store answers again for the data of `keyId`,
   * the API key whose call failed (on a Redis Cluster, the master holding
   * its slot: another master answering says nothing of that one); tried at
   * most once per interval.
   */
  readonly probe: (keyId: string) => Promise<unknown>;
  /**
   * Which part of the primary's store holds the buckets of `keyId` (on a
   * Redis Cluster, the master serving its slot): each part has its own
   * outage, so keys on the masters that answer stay shared. Default: one
   * part for all (a single Redis).
   */
  readonly scopeOf?: (keyId: string) => string;
  readonly logger: Logger;
  /** Least time between two probes during an outage (ms). */
  readonly probeIntervalMs?: number;
}

/** One part of the store out of reach. */
interface Outage {
  /** Start of the outage (caller's clock). */
  readonly sinceMs: number;
  nextProbeAtMs: number;
  /** The API key whose call started the outage: the probe asks for its data. */
  readonly failedKeyId: string;
  probing: boolean;
}

/**
 * A limiter that keeps limits in force while its primary (Redis) is down.
 *
 * The first failed call starts an outage of the part of the store holding
 * the key's buckets (all of it on a single Redis; one master on a cluster:
 * `scopeOf`): one warning is logged and every reservation of a key there
 * goes to the in-process fallback, so a paying user is served
 * (or refused with 429) instead of getting an error, and later requests do
 * not wait for Redis to time out. During the outage a background probe checks the primary
 * at most once per interval (driven by the callers' clocks, no timer); once
 * it answers, reservations go back to the primary.
 *
 * Limits are per process during an outage: each replica grants its own
 * allowance, and the shared buckets do not see what was spent meanwhile.
 * Reconciliation follows the reservation (known by the object reserve()
 * returned, not guessed): one taken on the fallback is settled there even
 * after the primary is back; one taken on the primary while the primary is
 * down only charges its excess (usage above the reservation) to the
 * fallback, since the refund belongs to the unreachable bucket. Neither call
 * ever rejects with a store error.
 */
export class FailoverRateLimiter implements RateLimiter {
  private readonly primary: RateLimiter;
  private readonly fallback: RateLimiter;
  private readonly probe: (keyId: string) => Promise<unknown>;
  private readonly logger: Logger;
  private readonly probeIntervalMs: number;
  private readonly scopeOf: (keyId: string) => string;
  /** The parts of the store out of reach, by scope; a key whose scope is absent uses the primary. */
  private readonly outages = new Map<string, Outage>();
  /** Reservations the fallback granted, not reconciled yet (weak: a lost one costs nothing). */
  private readonly onFallback = new WeakSet<Reservation>();

  constructor(o: FailoverRateLimiterOptions) {
    this.primary = o.primary;
    this.fallback = o.fallback;
    this.probe = o.probe;
    this.logger = o.logger;
    this.probeIntervalMs = o.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
    this.scopeOf = o.scopeOf ?? (() => "");
  }

  /**
   * True during an outage of any part of the store (some limits held per
   * process). An outage of a node that serves no slot any more (its replica
   * took over) lasts until a key it serves again calls and the probe answers.
   */
  get degraded(): boolean {
    return this.outages.size > 0;
  }

  /** Whether the limits of `keyId` are held per process now (its part of the store is out of reach). */
  degradedFor(keyId: string): boolean {
    return this.outages.has(this.scopeOf(keyId));
  }

  async reserve(keyId: string, limits: RateLimits, tokens: number, nowMs: number): Promise<ReserveResult> {
    const scope = this.scopeOf(keyId);
    const outage = this.outages.get(scope);
    if (outage === undefined) {
      try {
        return await this.primary.reserve(keyId, limits, tokens, nowMs);
      } catch (err) {
        this.markDown(scope, err, nowMs, keyId);
      }
    } else {
      this.maybeProbe(scope, outage, nowMs);
    }
    let r: ReserveResult;
    try {
      r = await this.fallback.reserve(keyId, limits, tokens, nowMs);
    } catch (err) {
      // Nothing left to hold the limits: refuse for now, as a retryable 503.
      throw new TensorClawError("unavailable", "Rate limiting is unavailable; retry shortly.", {
        retryAfterMs: this.probeIntervalMs,
        cause: err,
      });
    }
    if (r.ok) this.onFallback.add(r.reservation);
    return r;
  }

  async reconcile(reservation: Reservation, used: number, nowMs: number, refundRequest = false) {
    // Both limiters ignore a reconciliation that changes nothing.
    if (!reconcileMatters(reservation.limits, refundRequest)) return;
    if (this.onFallback.delete(reservation)) {
      await this.settleOnFallback(reservation, used, nowMs, refundRequest);
      return;
    }
    const scope = this.scopeOf(reservation.keyId);
    if (!this.outages.has(scope)) {
      try {
        await this.primary.reconcile(reservation, used, nowMs, refundRequest);
        return;
      } catch (err) {
        this.markDown(scope, err, nowMs, reservation.keyId);
      }
    }
    // Taken on the primary, which is out of reach: charge only what was used beyond the reservation
    // (a request to give back stays taken there: the fallback never counted it).
    const taken = Math.min(reservation.tokens, reservation.limits.tokensPerMinute);
    const excess = Math.max(0, Math.ceil(used) - taken);
    if (excess > 0) await this.settleOnFallback({ ...reservation, tokens: 0 }, excess, nowMs);
  }

  private async settleOnFallback(
    reservation: Reservation,
    used: number,
    nowMs: number,
    refundRequest = false,
  ): Promise<void> {
    try {
      await this.fallback.reconcile(reservation, used, nowMs, refundRequest);
    } catch (err) {
      this.logger.warn(
        { err, keyId: reservation.keyId },
        "rate-limit reconcile failed on the in-process limiter",
      );
    }
  }

  private markDown(scope: string, err: unknown, nowMs: number, keyId: string): void {
    if (this.outages.has(scope)) return;
    this.outages.set(scope, {
      sinceMs: nowMs,
      nextProbeAtMs: nowMs + this.probeIntervalMs,
      failedKeyId: keyId,
      probing: false,
    });
    this.logger.warn(
      { err: err instanceof Error ? err.message : String(err), ...scopeField(scope) },
      "rate limiter store unreachable; holding API key limits per process until it answers",
    );
  }

  private maybeProbe(scope: string, outage: Outage, nowMs: number): void {
    if (outage.probing || nowMs < outage.nextProbeAtMs) return;
    outage.probing = true;
    outage.nextProbeAtMs = nowMs + this.probeIntervalMs;
    this.probe(outage.failedKeyId).then(
      () => {
        outage.probing = false;
        if (this.outages.get(scope) !== outage) return;
        this.logger.info(
          { downForMs: Math.max(0, nowMs - outage.sinceMs), ...scopeField(scope) },
          "rate limiter store answers again; API key limits are shared again",
        );
        this.outages.delete(scope);
      },
      () => {
        outage.probing = false;
      },
    );
  }
}

/** The log field naming an outage's part of the store (none for a single Redis). */
function scopeField(scope: string): { store?: string } {
  return scope === "" ? {} : { store: scope };
}

/**
 * The limiter of a router with Redis: shared buckets in Redis, held per
 * process by an in-process limiter while Redis is unreachable.
 */
export function redisRateLimiterWithFallback(
  redis: RedisClient,
  logger: Logger,
  opts: { prefix?: string; probeIntervalMs?: number } = {},
): FailoverRateLimiter {
  const primary = new RedisRateLimiter(redis, opts.prefix);
  return new FailoverRateLimiter({
    primary,
    fallback: new EmbeddedRateLimiter(),
    // A read of the failed key's own buckets: routed to its master on a cluster (a PING would go
    // to any node, and end the outage while that master is still down).
    probe: (keyId) => redis.exists(primary.keyOf(keyId)),
    // On a cluster, one outage per master: keys whose buckets live on the others stay shared. A
    // slot served by a promoted replica names another node, so its keys go back to Redis at once.
    // (isCluster, not instanceof: a router without Redis never loads ioredis.)
    ...(redis.isCluster
      ? { scopeOf: (keyId: string) => masterOf(redis as Cluster, primary.keyOf(keyId)) }
      : {}),
    logger,
    probeIntervalMs: opts.probeIntervalMs,
  });
}

/** The node serving `key`'s slot as the client last learnt it ("" before it knows). */
function masterOf(cluster: Cluster, key: string): string {
  return cluster.slots[keySlot(key)]?.[0] ?? "";
}
