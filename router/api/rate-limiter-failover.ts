import { TensorClawError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { RedisClient } from "../../common/redis-connect.js";
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
  readonly logger: Logger;
  /** Least time between two probes during an outage (ms). */
  readonly probeIntervalMs?: number;
}

/**
 * A limiter that keeps limits in force while its primary (Redis) is down.
 *
 * The first failed call starts an outage: one warning is logged and every
 * reservation goes to the in-process fallback, so a paying user is served
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
  /** Start of the current outage (caller's clock); undefined while the primary is in use. */
  private downSinceMs: number | undefined;
  private nextProbeAtMs = 0;
  /** The API key whose call started the current outage: the probe asks for its data. */
  private failedKeyId = "";
  private probing = false;
  /** Reservations the fallback granted, not reconciled yet (weak: a lost one costs nothing). */
  private readonly onFallback = new WeakSet<Reservation>();

  constructor(o: FailoverRateLimiterOptions) {
    this.primary = o.primary;
    this.fallback = o.fallback;
    this.probe = o.probe;
    this.logger = o.logger;
    this.probeIntervalMs = o.probeIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS;
  }

  /** True during an outage (limits held per process). */
  get degraded(): boolean {
    return this.downSinceMs !== undefined;
  }

  async reserve(keyId: string, limits: RateLimits, tokens: number, nowMs: number): Promise<ReserveResult> {
    if (this.downSinceMs === undefined) {
      try {
        return await this.primary.reserve(keyId, limits, tokens, nowMs);
      } catch (err) {
        this.markDown(err, nowMs, keyId);
      }
    } else {
      this.maybeProbe(nowMs);
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
    if (this.downSinceMs === undefined) {
      try {
        await this.primary.reconcile(reservation, used, nowMs, refundRequest);
        return;
      } catch (err) {
        this.markDown(err, nowMs, reservation.keyId);
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

  private markDown(err: unknown, nowMs: number, keyId: string): void {
    if (this.downSinceMs !== undefined) return;
    this.downSinceMs = nowMs;
    this.failedKeyId = keyId;
    this.nextProbeAtMs = nowMs + this.probeIntervalMs;
    this.logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      "rate limiter store unreachable; holding API key limits per process until it answers",
    );
  }

  private maybeProbe(nowMs: number): void {
    if (this.probing || nowMs < this.nextProbeAtMs) return;
    this.probing = true;
    this.nextProbeAtMs = nowMs + this.probeIntervalMs;
    this.probe(this.failedKeyId).then(
      () => {
        this.probing = false;
        if (this.downSinceMs === undefined) return;
        this.logger.info(
          { downForMs: Math.max(0, nowMs - this.downSinceMs) },
          "rate limiter store answers again; API key limits are shared again",
        );
        this.downSinceMs = undefined;
      },
      () => {
        this.probing = false;
      },
    );
  }
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
    logger,
    probeIntervalMs: opts.probeIntervalMs,
  });
}
