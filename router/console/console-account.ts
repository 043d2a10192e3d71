import type { IncomingMessage, ServerResponse } from "node:http";
import { TensorClawError } from "../../common/errors.js";
import { billingStoreError } from "../api/chat-billing.js";
import type { ApiKeys } from "../api/keys.js";
import { applyReservation } from "../api/rate-limit-headers.js";
import type { RateLimiter } from "../api/rate-limiter.js";
import { type BillingStore, DAY_MS, type DaySpend, utcDay } from "../billing/billing.js";
import { microsToUsd } from "../billing/money.js";
import type { ActivityBody, ActivityDay, ActivityModel } from "./console-types.js";

/** Days the activity covers, today included. */
export const ACTIVITY_DAYS = 30;

/** What the activity endpoint reads. */
export interface ActivitySources {
  /** Undefined: the router serves without keys (`--no-auth`), so there is no account. */
  readonly keys: ApiKeys | undefined;
  readonly limiter: RateLimiter;
  readonly billing: BillingStore | undefined;
  /** A key's deposit address, when the router credits TAO deposits. */
  readonly depositAddress?: (keyId: string) => Promise<string>;
  readonly clock: () => number;
}

/** The last ACTIVITY_DAYS UTC days ending today, with the store's days filled in. */
export function activityDays(spend: readonly DaySpend[], nowMs: number): ActivityDay[] {
  const byDay = new Map(spend.map((d) => [d.dayStartMs, d]));
  const today = utcDay(nowMs) * DAY_MS;
  const out: ActivityDay[] = [];
  for (let i = ACTIVITY_DAYS - 1; i >= 0; i--) {
    const start = today - i * DAY_MS;
    const d = byDay.get(start);
    out.push({
      date: new Date(start).toISOString().slice(0, 10),
      cost: microsToUsd(d?.costMicros ?? 0),
      requests: d?.requests ?? 0,
      prompt_tokens: d?.promptTokens ?? 0,
      completion_tokens: d?.completionTokens ?? 0,
    });
  }
  return out;
}

/**
 * `GET /api/v1/key/activity`: the calling key's spend per UTC day and per
 * model over 30 days, and its deposit address. Only the key itself can read
 * it; the call counts as one request against its limit, like
 * `GET /api/v1/key`.
 */
export async function keyActivity(
  req: IncomingMessage,
  res: ServerResponse,
  s: ActivitySources,
): Promise<ActivityBody> {
  const keys = s.keys;
  if (keys === undefined) return { data: { days: [], models: [], deposit_address: null } };
  const key = await keys.authenticate(req.headers.authorization);
  const now = s.clock();
  applyReservation(res, key.limits, await s.limiter.reserve(key.id, key.limits, 0, now));
  const billing = s.billing;
  if (billing === undefined) throw new TensorClawError("not_found", "This router keeps no accounts.");
  let spend: DaySpend[];
  let models: ActivityModel[];
  try {
    spend = await billing.daily(key.id, now);
    const account = await billing.account(key.id, now);
    models = account.last30dByModel.map((m) => ({
      model: m.model,
      cost: microsToUsd(m.costMicros),
      requests: m.requests,
      prompt_tokens: m.promptTokens,
      completion_tokens: m.completionTokens,
    }));
  } catch (cause) {
    throw billingStoreError(cause);
  }
  return {
    data: {
      days: activityDays(spend, now),
      models,
      deposit_address: s.depositAddress === undefined ? null : await s.depositAddress(key.id),
    },
  };
}
