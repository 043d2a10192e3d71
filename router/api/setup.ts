import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Registry } from "prom-client";
import type { Logger } from "../../common/logger.js";
import type { RedisClient } from "../../common/redis-connect.js";
import type { Encodings } from "../../common/tokens/encodings.js";
import type { BillingStore } from "../billing/billing.js";
import type { ModelCatalogue } from "../catalogue/catalogue.js";
import { ApiMetrics, type MetricsSources } from "../metrics.js";
import { RoutingBook } from "../routing/book.js";
import type { TunnelDispatcher } from "../tunnel/types.js";
import type { UsageSink } from "../usage/event.js";
import type { ChatOptions } from "./chat.js";
import type { CorsOrigins } from "./cors.js";
import { ApiKeys, DEFAULT_KEYS_FILE, FileApiKeyStore, RedisApiKeyStore } from "./keys.js";
import { EmbeddedRateLimiter } from "./rate-limiter.js";
import { redisRateLimiterWithFallback } from "./rate-limiter-failover.js";
import { API_DEFAULTS, type ApiDeps } from "./server.js";

/** What the router program knows when it builds its Business API. */
export interface BusinessApiInputs {
  readonly dispatcher: TunnelDispatcher;
  readonly usage: UsageSink;
  readonly registry: Registry;
  readonly logger: Logger;
  /** The router's Redis (keys and rate limits live there); undefined: embedded stores. */
  readonly redis: RedisClient | undefined;
  /** `--no-auth`: serve without API keys (and so without per-key limits). */
  readonly noAuth: boolean;
  /** Readiness: ledger reachable or spooling. */
  readonly ready: () => boolean | Promise<boolean>;
  /** Figures for the `/readyz` body (spool depth, ledger lag). */
  readonly readyDetail?: () => Record<string, number>;
  /** Key file of the embedded store (default `.tensorclaw/api-keys.json`). */
  readonly keysFile?: string;
  /** Extra metric sources (ledger lag, spool depth). */
  readonly metricsSources?: Omit<MetricsSources, "sessions">;
  /** Overrides of the API tuning (the router's --max-body-bytes, tests). */
  readonly chat?: Partial<ChatOptions>;
  /**
   * Secret of the `user` hash, the same on every replica so a user hashes
   * the same everywhere (the router resolves it with resolveUserSalt);
   * default: random per process.
   */
  readonly userSalt?: string;
  /** The model catalogue in force (the router's CatalogueWatcher). */
  readonly catalogue: () => ModelCatalogue;
  /** Token encodings, loaded for the catalogue's tokenizers. */
  readonly encodings: Encodings;
  /** The router's routing state (one per router); default: a fresh one on the monotonic clock. */
  readonly routing?: RoutingBook;
  /** Bearer token /metrics asks for; undefined leaves it open. */
  readonly metricsToken?: string | undefined;
  /** Web origins allowed from browsers (`--cors-origins`); undefined: CORS off. */
  readonly corsOrigins?: CorsOrigins | undefined;
  /** Requests one key may have in progress (`--max-concurrent-per-key`). */
  readonly maxConcurrentPerKey?: number;
  /**
   * API keys' balances, holds and spend (RedisBilling on the router's Redis,
   * else EmbeddedBilling); undefined runs without billing.
   */
  readonly billing?: BillingStore | undefined;
}

/**
 * Assembles the Business API's dependencies the way the router runs them:
 * keys and rate limits in Redis when there is one (shared by every replica;
 * limits fall back to an in-process limiter while Redis is unreachable), else
 * an embedded key file and in-process limiter.
 */
export function businessApiDeps(i: BusinessApiInputs): ApiDeps {
  const keys = i.noAuth
    ? undefined
    : new ApiKeys(
        i.redis !== undefined
          ? new RedisApiKeyStore(i.redis)
          : new FileApiKeyStore(i.keysFile ?? DEFAULT_KEYS_FILE),
      );
  // With Redis, limits are shared by every replica and held per process while Redis is down.
  const limiter =
    i.redis !== undefined ? redisRateLimiterWithFallback(i.redis, i.logger) : new EmbeddedRateLimiter();
  const metrics = new ApiMetrics(i.registry, {
    sessions: () => i.dispatcher.sessions(),
    ...i.metricsSources,
  });
  const salt = i.userSalt ?? randomBytes(32).toString("hex");
  return {
    dispatcher: i.dispatcher,
    usage: i.usage,
    limiter,
    metrics,
    clock: Date.now,
    logger: i.logger,
    catalogue: i.catalogue,
    encodings: i.encodings,
    options: { userSalt: salt, ...API_DEFAULTS, ...i.chat },
    routing: i.routing ?? new RoutingBook({ now: () => performance.now(), random: Math.random }),
    keys,
    registry: i.registry,
    ready: i.ready,
    ...(i.readyDetail === undefined ? {} : { readyDetail: i.readyDetail }),
    ...(i.metricsToken === undefined ? {} : { metricsToken: i.metricsToken }),
    ...(i.corsOrigins === undefined ? {} : { corsOrigins: i.corsOrigins }),
    ...(i.maxConcurrentPerKey === undefined ? {} : { maxConcurrentPerKey: i.maxConcurrentPerKey }),
    ...(i.billing === undefined ? {} : { billing: i.billing }),
  };
}
