import { nonNegative, businessPoints as pointsOf } from "../common/business-points.js";
import { type LatencyTier, latencyTierScore } from "./latency-tiers.js";

/** How many recent probes count for uptime (and are kept per miner). */
export const PROBE_HISTORY_SIZE = 100;

/** One probe outcome as the validator keeps it. */
export interface ProbeRecord {
  /** When the probe finished (Unix ms). */
  readonly atMs: number;
  readonly ok: boolean;
  /** Total latency of the probe in ms (0 when it failed before any answer). */
  readonly latencyMs: number;
  /** Time to first token in ms (0 when none arrived). */
  readonly ttftMs: number;
}

/** One model's usage over the rolling window, as UsageReport gives it. */
export interface ModelUsageInput {
  readonly model: string;
  /** Every credited prompt token, paid or free. */
  readonly promptTokens: number;
  /** Every credited completion token, paid or free. */
  readonly completionTokens: number;
  /** The paid part of `promptTokens`: only paid tokens earn (README, Scoring). */
  readonly paidPromptTokens: number;
  /** The paid part of `completionTokens`. */
  readonly paidCompletionTokens: number;
  /** The router's tier multiplier for this model. */
  readonly tierMultiplier: number;
  /**
   * The miner's user success rate for this model in [0, 1] (UsageReport's
   * outcome counts); 1 when the router recorded none.
   */
  readonly successRate: number;
}

/** Everything the formula needs about one miner. */
export interface MinerInput {
  readonly hotkey: string;
  /** Connected now and offering at least one model. */
  readonly available: boolean;
  /** Probe history, oldest first (only the last {@link PROBE_HISTORY_SIZE} count). */
  readonly probes: readonly ProbeRecord[];
  readonly usage: readonly ModelUsageInput[];
  /**
   * Models whose audit verdict is `failed` (audit/verdicts.ts): their usage
   * earns nothing and their tokens do not count, until an audit passes
   * again. Absent: none.
   */
  readonly failedModels?: readonly string[];
}

/** The base score and its parts, each on 0–100. */
export interface BaseBreakdown {
  readonly availability: number;
  /** 100 when the latest probe passed. */
  readonly probe: number;
  /** Response-time tier score of the latest probe (0 when it failed or none ran). */
  readonly latencyTier: number;
  /** Share of the last 100 probes that passed, as a percentage. */
  readonly uptime: number;
  /** Latest probe failed: base is 0. */
  readonly ghost: boolean;
  readonly base: number;
}

/** One miner's full score. */
export interface MinerScore extends BaseBreakdown {
  readonly hotkey: string;
  /**
   * Prompt + completion tokens in the window that count for business (the
   * paid ones, or all when free traffic counts), all models but the failed
   * ones.
   */
  readonly tokens: number;
  /** Models that earned nothing because their audits failed, sorted. */
  readonly failedModels: readonly string[];
  /** Σ tokens / 10,000 × tier multiplier, before normalisation. */
  readonly businessPoints: number;
  /** Business points normalised to 0–100 against the best miner. */
  readonly business: number;
  /** 10 % base + 90 % business, 0–100. */
  readonly final: number;
}

/** Weights of the formula, fixed by the subnet's published rules. */
export const FORMULA = Object.freeze({
  base: 0.1,
  business: 0.9,
  availability: 0.3,
  probe: 0.4,
  latency: 0.2,
  uptime: 0.1,
});

/** The base score of one miner. */
export function baseScore(
  available: boolean,
  probes: readonly ProbeRecord[],
  tiers: readonly LatencyTier[],
): BaseBreakdown {
  const recent = probes.length > PROBE_HISTORY_SIZE ? probes.slice(-PROBE_HISTORY_SIZE) : probes;
  const latest = recent.at(-1);
  const passed = recent.reduce((n, p) => n + (p.ok ? 1 : 0), 0);
  const uptime = recent.length === 0 ? 0 : (passed / recent.length) * 100;
  const availability = available ? 100 : 0;
  if (latest !== undefined && !latest.ok) {
    return { availability, probe: 0, latencyTier: 0, uptime, ghost: true, base: 0 };
  }
  const probe = latest === undefined ? 0 : 100;
  const latencyTier = latest === undefined ? 0 : latencyTierScore(latest.latencyMs, tiers);
  const base =
    FORMULA.availability * availability +
    FORMULA.probe * probe +
    FORMULA.latency * latencyTier +
    FORMULA.uptime * uptime;
  return { availability, probe, latencyTier, uptime, ghost: false, base };
}

/** How usage turns into business points. */
export interface BusinessOptions {
  /**
   * Count free tokens too: set when the router's report says it counts
   * free traffic (GetUsageResponse.free_traffic_counted, a dev network).
   * Default: only paid tokens earn.
   */
  readonly countFreeTraffic?: boolean;
}

/**
 * Business points of one miner: Σ over models of paid tokens / 10,000 ×
 * tier multiplier × the miner's user success rate for the model
 * (TensorClaw's additions to the seed's formula: README, Scoring); every
 * token instead of the paid ones with `countFreeTraffic`. Models in
 * `failedModels` (failed audits) are left out: no points, no tokens.
 * Negative or non-finite counts, multipliers and rates count as 0, and a
 * rate above 1 as 1, so a broken report cannot produce a negative, inflated
 * or NaN score.
 */
export function businessPoints(
  usage: readonly ModelUsageInput[],
  failedModels: readonly string[] = [],
  opts: BusinessOptions = {},
): { tokens: number; points: number } {
  const failed = new Set(failedModels);
  const countFree = opts.countFreeTraffic === true;
  let tokens = 0;
  let points = 0;
  for (const u of usage) {
    if (failed.has(u.model)) continue;
    const t = countFree
      ? nonNegative(u.promptTokens) + nonNegative(u.completionTokens)
      : nonNegative(u.paidPromptTokens) + nonNegative(u.paidCompletionTokens);
    tokens += t;
    points += pointsOf(t, u.tierMultiplier) * Math.min(1, nonNegative(u.successRate));
  }
  return { tokens, points };
}

/**
 * Scores every miner. Business is normalised against the best miner of this
 * set (all zero when nobody served paid traffic). The result is sorted by
 * hotkey so equal inputs always give equal outputs.
 */
export function scoreMiners(
  inputs: readonly MinerInput[],
  tiers: readonly LatencyTier[],
  opts: BusinessOptions = {},
): MinerScore[] {
  const rows = inputs.map((m) => ({ m, biz: businessPoints(m.usage, m.failedModels, opts) }));
  const best = rows.reduce((max, r) => Math.max(max, r.biz.points), 0);
  const out = rows.map(({ m, biz }): MinerScore => {
    const b = baseScore(m.available, m.probes, tiers);
    const business = best > 0 ? (biz.points / best) * 100 : 0;
    const final = FORMULA.base * b.base + FORMULA.business * business;
    return {
      hotkey: m.hotkey,
      ...b,
      tokens: biz.tokens,
      failedModels: [...new Set(m.failedModels ?? [])].sort(),
      businessPoints: biz.points,
      business,
      final: Math.min(100, Math.max(0, final)),
    };
  });
  return out.sort((a, b) => (a.hotkey < b.hotkey ? -1 : a.hotkey > b.hotkey ? 1 : 0));
}
