import type { OutcomeCounts } from "../ledger/outcomes.js";
import type { SessionState, SessionView } from "../tunnel/types.js";
import type { MinerStateName, SeriesPoint, TrafficFigures } from "./console-types.js";

/**
 * Pure arithmetic behind the console's endpoints: adding ledger rows into
 * traffic figures, a hotkey's state from its tunnels, medians, hourly series
 * out of cumulative windows. No I/O, no clock.
 */

/** What the figures are added from: a ledger row (one miner, one model, one window). */
export interface TrafficRow {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly requests: number;
  readonly outcomes: OutcomeCounts;
}

/** Running sums of rows, turned into TrafficFigures by `figures`. */
export interface TrafficSum {
  prompt: number;
  completion: number;
  requests: number;
  served: number;
  attempts: number;
}

export function emptySum(): TrafficSum {
  return { prompt: 0, completion: 0, requests: 0, served: 0, attempts: 0 };
}

/** Adds one row into a sum (in place) and returns it. */
export function addRow(sum: TrafficSum, r: TrafficRow): TrafficSum {
  const o = r.outcomes;
  sum.prompt += r.promptTokens;
  sum.completion += r.completionTokens;
  sum.requests += r.requests;
  sum.served += o.served;
  sum.attempts += o.served + o.failedBeforeOutput + o.failedAfterOutput + o.deadlineCut;
  return sum;
}

/** The figures a page shows for a sum. */
export function figures(s: TrafficSum): TrafficFigures {
  return {
    prompt_tokens: s.prompt,
    completion_tokens: s.completion,
    requests: s.requests,
    success_rate: s.attempts === 0 ? null : s.served / s.attempts,
  };
}

/** Which state a hotkey shows when its tunnels differ: the one that best describes whether it serves. */
const STATE_RANK: Readonly<Record<SessionState, number>> = { active: 0, draining: 1, ghost: 2, banned: 3 };

/** The state of a hotkey from its tunnels (at least one). */
export function hotkeyState(tunnels: readonly SessionView[]): MinerStateName {
  let best: SessionState = "banned";
  for (const t of tunnels) if (STATE_RANK[t.state] < STATE_RANK[best]) best = t.state;
  return best;
}

/** Sessions grouped by hotkey, hotkeys in order. */
export function byHotkey(sessions: readonly SessionView[]): Map<string, SessionView[]> {
  const out = new Map<string, SessionView[]>();
  for (const s of [...sessions].sort((a, b) => (a.hotkey < b.hotkey ? -1 : a.hotkey > b.hotkey ? 1 : 0))) {
    const list = out.get(s.hotkey) ?? [];
    list.push(s);
    out.set(s.hotkey, list);
  }
  return out;
}

/** Median of the defined values; null when there is none. */
export function median(values: readonly (number | undefined)[]): number | null {
  const v = values.filter((x): x is number => x !== undefined && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  const m = v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
  return Math.round(m);
}

/** Totals of the rows that fall in one cumulative window (the last `k` hours). */
export interface CumulativeTotal {
  readonly tokens: number;
  readonly requests: number;
}

/**
 * Hourly points from cumulative totals: `cumulative[k]` covers the last
 * k + 1 hours, so hour k back is the difference of two neighbours. The
 * ledger answers windows, not buckets; this is how a chart is drawn from
 * it. A negative difference (usage recorded between two reads) is shown as 0.
 */
export function hourlySeries(
  cumulative: readonly CumulativeTotal[],
  windowEndMs: number,
  hourMs: number,
): SeriesPoint[] {
  const out: SeriesPoint[] = [];
  for (let k = cumulative.length - 1; k >= 0; k--) {
    const cur = cumulative[k] as CumulativeTotal;
    const prev = k === 0 ? { tokens: 0, requests: 0 } : (cumulative[k - 1] as CumulativeTotal);
    out.push({
      start_ms: windowEndMs - (k + 1) * hourMs,
      tokens: Math.max(0, cur.tokens - prev.tokens),
      requests: Math.max(0, cur.requests - prev.requests),
    });
  }
  return out;
}
