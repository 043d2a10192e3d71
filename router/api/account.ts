import { TensorClawError } from "../../common/errors.js";
import { type AccountView, type GenerationRecord, RECENT_GENERATIONS_MAX } from "../billing/billing.js";
import { type Micros, microsToUsd } from "../billing/money.js";
import type { ApiKeyRecord } from "./keys.js";

/**
 * The account endpoints a key holder reads, in OpenRouter's shapes so its
 * clients and dashboards work unchanged (README, For API users):
 *
 * - `GET /api/v1/key`: the calling key, `{"data": {...}}` with OpenRouter's
 *   fields (label, usage, usage_daily/weekly/monthly, limit,
 *   limit_remaining, limit_reset, is_free_tier, is_provisioning_key,
 *   rate_limit) and TensorClaw's own beside them (key_id, balance, held,
 *   budget_daily, budget_daily_remaining, usage_24h, usage_30d).
 * - `GET /api/v1/generation?id=<x-request-id>`: one request of that key.
 * - `GET /api/v1/key/generations?limit=N`: that key's newest requests, each
 *   as `/api/v1/generation` reads it (TensorClaw's own; OpenRouter has none).
 *
 * Amounts are USD (the store keeps integer micros; see money.ts). Pure
 * functions: the server reads the store and sends what these return.
 */

/** How the rate limit's interval is written: limits are per minute. */
const RATE_LIMIT_INTERVAL = "1m";
/** `rate_limit.requests` of a key without a request limit (OpenRouter writes -1 for none). */
const UNLIMITED = -1;

function usd(m: Micros): number {
  return microsToUsd(m);
}

/** The `GET /api/v1/key` body for an authenticated key and its account. */
export function keyBody(key: ApiKeyRecord, a: AccountView): { data: Record<string, unknown> } {
  const metered = a.settings?.metered === true;
  const budget = a.settings?.budgetDailyMicros ?? null;
  const rpm = key.limits.requestsPerMinute;
  const tpm = key.limits.tokensPerMinute;
  return {
    data: {
      label: key.name !== "" ? key.name : key.hint,
      usage: usd(a.spentTotalMicros),
      usage_daily: usd(a.spentTodayMicros),
      usage_weekly: usd(a.spentWeekMicros),
      usage_monthly: usd(a.spentMonthMicros),
      // What was credited to the key is what it may spend in all; an unmetered key has no limit.
      limit: metered ? usd(a.creditedMicros) : null,
      limit_remaining: metered ? usd(a.balanceMicros - a.heldMicros) : null,
      // Credit does not reset; a daily budget does (budget_daily below).
      limit_reset: null,
      is_free_tier: !metered || a.creditedMicros === 0,
      is_provisioning_key: false,
      rate_limit: {
        requests: rpm > 0 ? rpm : UNLIMITED,
        interval: RATE_LIMIT_INTERVAL,
        tokens: tpm > 0 ? tpm : UNLIMITED,
      },
      // TensorClaw's own fields.
      key_id: key.id,
      balance: metered ? usd(a.balanceMicros) : null,
      held: usd(a.heldMicros),
      budget_daily: budget === null ? null : usd(budget),
      budget_daily_remaining:
        budget === null ? null : usd(Math.max(0, budget - a.spentTodayMicros - a.heldMicros)),
      usage_24h: usd(a.spent24hMicros),
      usage_30d: usd(a.spent30dMicros),
    },
  };
}

/**
 * The `GET /api/v1/key` body of a router serving without keys
 * (`--no-auth`): an anonymous caller that nothing is charged to, unlimited.
 */
export function anonymousKeyBody(): { data: Record<string, unknown> } {
  return {
    data: {
      label: "anonymous (this router serves without API keys)",
      usage: 0,
      usage_daily: 0,
      usage_weekly: 0,
      usage_monthly: 0,
      limit: null,
      limit_remaining: null,
      limit_reset: null,
      is_free_tier: true,
      is_provisioning_key: false,
      rate_limit: { requests: UNLIMITED, interval: RATE_LIMIT_INTERVAL, tokens: UNLIMITED },
    },
  };
}

/** The `GET /api/v1/generation` body for one of the caller's generation records. */
export function generationBody(g: GenerationRecord): { data: Record<string, unknown> } {
  const cost = usd(g.costMicros);
  return {
    data: {
      id: g.id,
      model: g.model,
      created_at: new Date(g.createdAtMs).toISOString(),
      tokens_prompt: g.promptTokens,
      tokens_completion: g.completionTokens,
      // The router counts tokens itself (README, Scoring): its counts are the native ones.
      native_tokens_prompt: g.promptTokens,
      native_tokens_completion: g.completionTokens,
      total_cost: cost,
      usage: cost,
      latency: g.latencyMs,
      generation_time: g.ttftMs === null ? null : Math.max(0, g.latencyMs - g.ttftMs),
      time_to_first_token_ms: g.ttftMs,
      finish_reason: g.finishReason,
      native_finish_reason: g.finishReason,
      streamed: g.streamed,
      cancelled: g.outcome === "cancelled",
      provider_name: "TensorClaw",
      // OpenRouter's name for the app's HTTP-Referer.
      origin: g.app?.referer ?? "",
      // TensorClaw's own: how the request ended (completed, cancelled, failed, ...).
      outcome: g.outcome,
      // TensorClaw's own: the app as its HTTP-Referer and X-Title headers named it.
      app: g.app === undefined ? null : { referer: g.app.referer ?? null, title: g.app.title ?? null },
    },
  };
}

/** How many generations `GET /api/v1/key/generations` lists without `?limit=`. */
export const DEFAULT_GENERATIONS_LIMIT = 20;

/** The `limit` of `GET /api/v1/key/generations?limit=N`: a whole number in 1..RECENT_GENERATIONS_MAX. */
export function generationsLimit(query: string): number {
  const raw = new URLSearchParams(query).get("limit");
  if (raw === null || raw === "") return DEFAULT_GENERATIONS_LIMIT;
  const n = /^[0-9]{1,4}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= RECENT_GENERATIONS_MAX)) {
    throw new TensorClawError(
      "invalid_request",
      `limit must be a whole number from 1 to ${RECENT_GENERATIONS_MAX}; got ${JSON.stringify(raw.slice(0, 20))}.`,
      { param: "limit" },
    );
  }
  return n;
}

/** The `GET /api/v1/key/generations` body: the key's newest generations, newest first. */
export function generationsBody(list: readonly GenerationRecord[]): { data: Record<string, unknown>[] } {
  return { data: list.map((g) => generationBody(g).data) };
}
