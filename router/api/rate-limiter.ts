import { readFileSync } from "node:fs";
import type { RedisClient } from "../../common/redis-connect.js";

/** A bucket idle this long is full again even from maximal debt, so its key may expire. */
const BUCKET_TTL_MS = 120_000;
/** The in-memory limiter drops idle buckets only once it holds this many. */
const PRUNE_ABOVE_BUCKETS = 10_000;

/**
 * Per-API-key limits. Each is a token bucket holding one minute's allowance
 * that refills continuously, so bursts up to the limit are allowed and the
 * long-run rate never exceeds it. 0 means unlimited.
 */
export interface RateLimits {
  readonly requestsPerMinute: number;
  readonly tokensPerMinute: number;
}

/**
 * A granted reservation. reconcile() takes it back, so a limiter that can
 * grant from more than one store knows which one to settle in (compared by
 * identity: pass the very object reserve() returned).
 */
export interface Reservation {
  readonly keyId: string;
  readonly limits: RateLimits;
  /** Tokens taken (rounded up, at least 0). */
  readonly tokens: number;
}

/**
 * The levels of a key's two buckets as a reservation left them (or found
 * them, when it was refused): what the rate-limit headers report. Levels are
 * fractional (buckets refill continuously); a bucket whose limit is 0 has a
 * meaningless level.
 */
export interface BucketLevels {
  /** Requests left. */
  readonly requests: number;
  /** Tokens left; negative while in debt. */
  readonly tokens: number;
}

/**
 * Outcome of a reservation. `levels` is absent for a key with no limits
 * (nothing was computed).
 */
export type ReserveResult =
  | { readonly ok: true; readonly reservation: Reservation; readonly levels?: BucketLevels }
  | { readonly ok: false; readonly retryAfterMs: number; readonly levels?: BucketLevels };

/** Whether the buckets allow a cost, and if not how long until they do. */
export type BucketVerdict = { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number };

/**
 * Reserve-then-reconcile rate limiting. Before a call the router reserves one
 * request and its worst-case tokens (prompt estimate + max_tokens); after it,
 * it reconciles the reservation with the credited count. Both steps are
 * atomic per key, so limits hold however many requests race.
 */
export interface RateLimiter {
  reserve(keyId: string, limits: RateLimits, tokens: number, nowMs: number): Promise<ReserveResult>;
  /**
   * Settles a reservation this limiter granted: `used` tokens replace the
   * reserved ones, and with `refundRequest` the request itself is given back
   * (it was refused for want of capacity: the key did not get a request).
   */
  reconcile(reservation: Reservation, used: number, nowMs: number, refundRequest?: boolean): Promise<void>;
}

function granted(keyId: string, limits: RateLimits, tokens: number, levels?: BucketLevels): ReserveResult {
  return levels === undefined
    ? { ok: true, reservation: { keyId, limits, tokens } }
    : { ok: true, reservation: { keyId, limits, tokens }, levels };
}

/** The two buckets of one key. */
export interface BucketState {
  /** Requests left. */
  readonly requests: number;
  /** Tokens left; negative while in debt. */
  readonly tokens: number;
  /** When these levels were computed (Unix ms). */
  readonly atMs: number;
}

/** Refills both buckets up to `nowMs`. An absent state is two full buckets. */
export function refill(state: BucketState | undefined, limits: RateLimits, nowMs: number): BucketState {
  const rpm = limits.requestsPerMinute;
  const tpm = limits.tokensPerMinute;
  if (state === undefined) return { requests: rpm, tokens: tpm, atMs: nowMs };
  const dt = Math.max(0, nowMs - state.atMs);
  return {
    requests: Math.min(rpm, state.requests + (dt * rpm) / 60_000),
    tokens: Math.min(tpm, state.tokens + (dt * tpm) / 60_000),
    atMs: nowMs,
  };
}

/**
 * Pure reservation arithmetic (mirrored by lua/ratelimit-reserve.lua). A cost
 * above the whole per-minute allowance waits for a full bucket instead of
 * being refused forever. Returns the new state (unchanged when refused).
 */
export function reserveBuckets(
  state: BucketState | undefined,
  limits: RateLimits,
  tokens: number,
  nowMs: number,
): { state: BucketState; result: BucketVerdict } {
  const s = refill(state, limits, nowMs);
  const rpm = limits.requestsPerMinute;
  const tpm = limits.tokensPerMinute;
  const cost = Math.min(tokens, tpm);
  let wait = 0;
  if (rpm > 0 && s.requests < 1) wait = Math.max(wait, ((1 - s.requests) * 60_000) / rpm);
  if (tpm > 0 && s.tokens < cost) wait = Math.max(wait, ((cost - s.tokens) * 60_000) / tpm);
  if (wait > 0) return { state: s, result: { ok: false, retryAfterMs: Math.ceil(wait) } };
  return {
    state: {
      requests: rpm > 0 ? s.requests - 1 : s.requests,
      tokens: tpm > 0 ? s.tokens - cost : s.tokens,
      atMs: nowMs,
    },
    result: { ok: true },
  };
}

/** Pure settlement arithmetic (mirrored by lua/ratelimit-reconcile.lua). */
export function reconcileBuckets(
  state: BucketState | undefined,
  limits: RateLimits,
  reserved: number,
  used: number,
  nowMs: number,
  refundRequest = false,
): BucketState {
  const tpm = limits.tokensPerMinute;
  const rpm = limits.requestsPerMinute;
  let s = refill(state, limits, nowMs);
  if (refundRequest && rpm > 0) s = { ...s, requests: Math.min(rpm, s.requests + 1) };
  if (tpm <= 0) return s;
  const back = Math.min(reserved, tpm);
  return { ...s, tokens: Math.max(-tpm, Math.min(tpm, s.tokens + back - used)) };
}

/** Whether reconciling changes anything: a token limit to settle, or a request to give back. */
export function reconcileMatters(limits: RateLimits, refundRequest: boolean): boolean {
  return limits.tokensPerMinute > 0 || (refundRequest && limits.requestsPerMinute > 0);
}

/** In-process limiter for a router without Redis. */
export class EmbeddedRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, BucketState>();

  async reserve(keyId: string, limits: RateLimits, tokens: number, nowMs: number): Promise<ReserveResult> {
    const cost = Math.max(0, Math.ceil(tokens));
    if (limits.requestsPerMinute <= 0 && limits.tokensPerMinute <= 0) return granted(keyId, limits, cost);
    const { state, result } = reserveBuckets(this.buckets.get(keyId), limits, cost, nowMs);
    this.buckets.set(keyId, state);
    this.prune(nowMs);
    const levels = { requests: state.requests, tokens: state.tokens };
    return result.ok
      ? granted(keyId, limits, cost, levels)
      : { ok: false, retryAfterMs: result.retryAfterMs, levels };
  }

  async reconcile(reservation: Reservation, used: number, nowMs: number, refundRequest = false) {
    const { keyId, limits, tokens } = reservation;
    if (!reconcileMatters(limits, refundRequest)) return;
    const u = Math.max(0, Math.ceil(used));
    this.buckets.set(
      keyId,
      reconcileBuckets(this.buckets.get(keyId), limits, tokens, u, nowMs, refundRequest),
    );
  }

  /** Drops buckets idle for two minutes (full again by then), so the map stays small. */
  private prune(nowMs: number): void {
    if (this.buckets.size < PRUNE_ABOVE_BUCKETS) return;
    for (const [k, s] of this.buckets) if (nowMs - s.atMs > BUCKET_TTL_MS) this.buckets.delete(k);
  }
}

const LUA_DIR = new URL("./lua/", import.meta.url);

type ScriptRedis = RedisClient & {
  tcRateReserve(key: string, ...args: (string | number)[]): Promise<[number, number, string, string]>;
  tcRateReconcile(key: string, ...args: (string | number)[]): Promise<number>;
};

/** Limiter shared by every router replica through Redis (one Lua script per step). */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: ScriptRedis;

  /** `prefix` namespaces the keys (tests use a random one). */
  constructor(
    redis: RedisClient,
    private readonly prefix = "tc:",
  ) {
    const r = redis as ScriptRedis;
    if (typeof r.tcRateReserve !== "function") {
      r.defineCommand("tcRateReserve", {
        numberOfKeys: 1,
        lua: readFileSync(new URL("ratelimit-reserve.lua", LUA_DIR), "utf8"),
      });
      r.defineCommand("tcRateReconcile", {
        numberOfKeys: 1,
        lua: readFileSync(new URL("ratelimit-reconcile.lua", LUA_DIR), "utf8"),
      });
    }
    this.redis = r;
  }

  /** The Redis key of an API key's buckets. */
  keyOf(keyId: string): string {
    // Hash tag so a key's buckets stay on one Redis Cluster slot.
    return `${this.prefix}ratelimit:{${keyId}}`;
  }

  async reserve(keyId: string, limits: RateLimits, tokens: number, nowMs: number): Promise<ReserveResult> {
    const cost = Math.max(0, Math.ceil(tokens));
    if (limits.requestsPerMinute <= 0 && limits.tokensPerMinute <= 0) return granted(keyId, limits, cost);
    const [ok, wait, r, t] = await this.redis.tcRateReserve(
      this.keyOf(keyId),
      nowMs,
      limits.requestsPerMinute,
      limits.tokensPerMinute,
      cost,
      BUCKET_TTL_MS,
    );
    const levels = { requests: Number(r), tokens: Number(t) };
    return ok === 1
      ? granted(keyId, limits, cost, levels)
      : { ok: false, retryAfterMs: Number(wait), levels };
  }

  async reconcile(reservation: Reservation, used: number, nowMs: number, refundRequest = false) {
    const { keyId, limits, tokens } = reservation;
    if (!reconcileMatters(limits, refundRequest)) return;
    await this.redis.tcRateReconcile(
      this.keyOf(keyId),
      nowMs,
      limits.requestsPerMinute,
      limits.tokensPerMinute,
      tokens,
      Math.max(0, Math.ceil(used)),
      BUCKET_TTL_MS,
      refundRequest ? 1 : 0,
    );
  }
}
