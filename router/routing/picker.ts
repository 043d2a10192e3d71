import type { SessionModel, SessionView } from "../tunnel/types.js";

/** A uniform random number in [0, 1). Injected so picks are reproducible in tests. */
export type RandomSource = () => number;

/** Tuning of the picker. */
export interface PickerOptions {
  /**
   * Share of picks made uniformly among the candidates instead of by cost.
   * Without it a slow miner behind a fast idle one would never be chosen on
   * sequential traffic (starved), and its latency estimate could never improve.
   */
  readonly exploreRate: number;
  /** Latency assumed for a session not yet measured, in ms. */
  readonly unknownLatencyMs: number;
  /** Latencies below this count as this (a 0.1 ms miner is not 50× better than a 5 ms one). */
  readonly minLatencyMs: number;
  /**
   * Cap on how much worse than the best candidate a latency may count. Keeps a
   * slow-but-idle miner in play once the fast ones queue up (no starvation).
   */
  readonly maxLatencyRatio: number;
}

/** Defaults used when the router does not override them. */
export const PICKER_DEFAULTS: PickerOptions = Object.freeze({
  exploreRate: 0.05,
  unknownLatencyMs: 250,
  minLatencyMs: 5,
  maxLatencyRatio: 8,
});

/** One eligible session for a model. */
export interface Candidate {
  readonly session: SessionView;
  readonly model: SessionModel;
}

/** True when the session may take one more request for the model right now. */
export function isEligible(session: SessionView, modelId: string): SessionModel | undefined {
  if (session.state !== "active") return undefined;
  const m = session.models.find((x) => x.id === modelId);
  if (m === undefined || m.maxConcurrency < 1 || m.inFlight >= m.maxConcurrency) return undefined;
  return m;
}

/**
 * Every session that can serve the model now: active (never ghost, banned or
 * draining), offering the model, under that model's concurrency limit, and not
 * in `exclude` (sessions already tried for this request).
 */
export function candidates(
  sessions: readonly SessionView[],
  modelId: string,
  exclude: ReadonlySet<string> = new Set(),
): Candidate[] {
  const out: Candidate[] = [];
  for (const s of sessions) {
    if (exclude.has(s.sessionId)) continue;
    const m = isEligible(s, modelId);
    if (m !== undefined) out.push({ session: s, model: m });
  }
  return out;
}

/**
 * Expected cost of sending one more request to a candidate: its queue after
 * this request, relative to its capacity for the model, times its latency.
 * Lower is better.
 */
export function candidateCost(c: Candidate, bestLatencyMs: number, opts: PickerOptions): number {
  const latency = effectiveLatency(c.session.latencyMs, opts);
  const ratio = Math.min(latency / bestLatencyMs, opts.maxLatencyRatio);
  // Session-wide in-flight matters too: models of one miner share its backend.
  const load = Math.max(c.model.inFlight + 1, (c.session.inFlight + 1) / 2) / c.model.maxConcurrency;
  return load * ratio;
}

function effectiveLatency(latencyMs: number, opts: PickerOptions): number {
  if (!(latencyMs > 0)) return opts.unknownLatencyMs;
  return Math.max(latencyMs, opts.minLatencyMs);
}

function randomIndex(n: number, random: RandomSource): number {
  // Guard against a source that returns exactly 1.
  return Math.min(n - 1, Math.floor(random() * n));
}

/**
 * Chooses the session for one request by power of two choices: two distinct
 * candidates drawn at random, the cheaper one wins (ties broken by the first
 * draw, itself random). With probability `exploreRate` one random candidate is
 * taken instead. Returns undefined when nobody can serve the model now.
 *
 * Pure: the snapshot, the exclusions and the random source are its only inputs.
 */
export function pick(
  sessions: readonly SessionView[],
  modelId: string,
  random: RandomSource,
  exclude: ReadonlySet<string> = new Set(),
  opts: PickerOptions = PICKER_DEFAULTS,
): SessionView | undefined {
  const cands = candidates(sessions, modelId, exclude);
  const n = cands.length;
  if (n === 0) return undefined;
  if (n === 1) return cands[0]?.session;
  const i = randomIndex(n, random);
  if (random() < opts.exploreRate) return cands[i]?.session;
  let j = randomIndex(n - 1, random);
  if (j >= i) j++;
  const a = cands[i] as Candidate;
  const b = cands[j] as Candidate;
  let best = Number.POSITIVE_INFINITY;
  for (const c of [a, b]) best = Math.min(best, effectiveLatency(c.session.latencyMs, opts));
  return candidateCost(b, best, opts) < candidateCost(a, best, opts) ? b.session : a.session;
}

/**
 * Whether any connected session offers the model in any state (ignoring load
 * and ghosting): the difference between "no miner right now" (503) and
 * "no such model" (404).
 */
export function modelOffered(sessions: readonly SessionView[], modelId: string): boolean {
  return sessions.some((s) => s.models.some((m) => m.id === modelId));
}
