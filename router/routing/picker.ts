import { DEFAULT_INITIAL_LIMIT } from "../../common/aimd-limit.js";
import { type ModelKind, offersKind } from "../../common/request-kinds.js";
import type { SessionModel, SessionView } from "../tunnel/types.js";

/** A uniform random number in [0, 1). Injected so picks are reproducible in tests. */
export type RandomSource = () => number;

/** Tuning of the picker. */
export interface PickerOptions {
  /**
   * Share of picks made uniformly among the hotkeys with usable concurrency
   * instead of by cost. Without it a slow miner behind a fast idle one would
   * never be chosen on sequential traffic (starved), a new one might never be
   * measured, and a latency estimate could never improve.
   */
  readonly exploreRate: number;
  /** Latency assumed when no candidate is measured yet, in ms (only ratios matter). */
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

/**
 * What the router has learned about one hotkey for one model (a snapshot
 * from the RoutingBook). A hotkey missing from the snapshot is unmeasured:
 * DEFAULT_ROUTE.
 */
export interface HotkeyRoute {
  /** Requests it may run at once by what it has shown (learned, before the advertised ceiling). */
  readonly limit: number;
  /** Most it may run when taking overflow (before the ceiling); see AimdLimit.overflow. */
  readonly overflow: number;
  /** Smoothed time to first token of real requests, ms; undefined until measured. */
  readonly ttftMs: number | undefined;
  /** False while its circuit breaker is open (or half-open with the trial out). */
  readonly available: boolean;
}

/** The route of a hotkey the router knows nothing about. */
export const DEFAULT_ROUTE: HotkeyRoute = Object.freeze({
  limit: DEFAULT_INITIAL_LIMIT,
  overflow: Number.POSITIVE_INFINITY,
  ttftMs: undefined,
  available: true,
});

/** One tunnel of a hotkey that can take the model now. */
export interface Tunnel {
  readonly session: SessionView;
  readonly model: SessionModel;
}

/** One hotkey that may be given the request. */
export interface HotkeyCandidate {
  readonly hotkey: string;
  /** Requests in flight for the model, summed over all its sessions. */
  readonly inFlight: number;
  /**
   * The advertised ceiling: the largest `maxConcurrency` among its active
   * tunnels, not their sum, so opening more tunnels never raises it (they
   * normally front one backend).
   */
  readonly ceiling: number;
  /** Learned limit within the ceiling. */
  readonly usable: number;
  readonly ttftMs: number | undefined;
  /** Its active tunnels offering the model with room under their own limit. */
  readonly tunnels: readonly Tunnel[];
}

/**
 * The hotkeys that can serve the model now, in two tiers:
 * `within`: under their learned limit (the normal pool);
 * `overflow`: at or past it but under the advertised ceiling and its
 * overflow bound. Overflow is used only when nobody is within their limit:
 * refusing there would turn a burst on a fresh router (every limit still at
 * its low start) into 503s, and a request completed there is how a limit
 * learns to grow.
 * A hotkey is left out when excluded, when its breaker is open, or when
 * none of its tunnels is active (ghost, banned, draining) with room.
 */
export function hotkeyCandidates(
  sessions: readonly SessionView[],
  routes: ReadonlyMap<string, HotkeyRoute>,
  modelId: string,
  exclude: ReadonlySet<string> = new Set(),
  kind: ModelKind = "chat",
): { within: HotkeyCandidate[]; overflow: HotkeyCandidate[] } {
  const groups = new Map<string, { inFlight: number; ceiling: number; tunnels: Tunnel[] }>();
  for (const s of sessions) {
    if (exclude.has(s.hotkey)) continue;
    const m = s.models.find((x) => x.id === modelId);
    // A tunnel whose model does not serve this kind of request is no candidate for it.
    if (m === undefined || !offersKind(m.kinds, kind)) continue;
    let g = groups.get(s.hotkey);
    if (g === undefined) {
      g = { inFlight: 0, ceiling: 0, tunnels: [] };
      groups.set(s.hotkey, g);
    }
    // Work on a draining or ghost tunnel still loads the miner's backend.
    g.inFlight += m.inFlight;
    if (s.state !== "active") continue;
    g.ceiling = Math.max(g.ceiling, m.maxConcurrency);
    if (m.inFlight < m.maxConcurrency) g.tunnels.push({ session: s, model: m });
  }
  const within: HotkeyCandidate[] = [];
  const overflow: HotkeyCandidate[] = [];
  for (const [hotkey, g] of groups) {
    const route = routes.get(hotkey) ?? DEFAULT_ROUTE;
    const cap = Math.min(g.ceiling, route.overflow);
    if (!route.available || g.tunnels.length === 0 || g.inFlight >= cap) continue;
    const usable = Math.min(Math.max(1, Math.floor(route.limit)), g.ceiling);
    const c = {
      hotkey,
      inFlight: g.inFlight,
      ceiling: g.ceiling,
      usable,
      ttftMs: route.ttftMs,
      tunnels: g.tunnels,
    };
    (g.inFlight < usable ? within : overflow).push(c);
  }
  return { within, overflow };
}

/**
 * The latency a candidate is judged by: its measured time to first token, or
 * for one never measured, the median of the measured candidates (neutral:
 * neither favoured nor shunned, so it gets traffic and is measured).
 */
function latencies(cands: readonly HotkeyCandidate[], opts: PickerOptions): number[] {
  const measured = cands.flatMap((c) => (c.ttftMs === undefined ? [] : [c.ttftMs])).sort((a, b) => a - b);
  const neutral =
    measured.length === 0 ? opts.unknownLatencyMs : (measured[Math.floor(measured.length / 2)] as number);
  return cands.map((c) => Math.max(c.ttftMs ?? neutral, opts.minLatencyMs));
}

/**
 * Expected cost of one more request on a hotkey: its queue after this
 * request times how much slower than the best of the pair it is (capped).
 * Absolute in-flight, not in-flight over a limit: a larger claimed or
 * learned limit must not make a hotkey look idle. Lower is better.
 */
export function hotkeyCost(
  inFlight: number,
  latencyMs: number,
  bestLatencyMs: number,
  opts: PickerOptions,
): number {
  return (inFlight + 1) * Math.min(latencyMs / bestLatencyMs, opts.maxLatencyRatio);
}

function randomIndex(n: number, random: RandomSource): number {
  // Guard against a source that returns exactly 1.
  return Math.min(n - 1, Math.floor(random() * n));
}

/** Power of two choices over hotkeys (with exploration when asked). */
function chooseHotkey(
  cands: readonly HotkeyCandidate[],
  random: RandomSource,
  explore: boolean,
  opts: PickerOptions,
): HotkeyCandidate {
  const n = cands.length;
  const i = randomIndex(n, random);
  const a = cands[i] as HotkeyCandidate;
  if (n === 1 || (explore && random() < opts.exploreRate)) return a;
  let j = randomIndex(n - 1, random);
  if (j >= i) j++;
  const b = cands[j] as HotkeyCandidate;
  const lat = latencies(cands, opts);
  const la = lat[i] as number;
  const lb = lat[j] as number;
  const best = Math.min(la, lb);
  return hotkeyCost(b.inFlight, lb, best, opts) < hotkeyCost(a.inFlight, la, best, opts) ? b : a;
}

/** The hotkey's least loaded tunnels for the model (by the model's, then the tunnel's, in-flight). */
function leastLoaded(tunnels: readonly Tunnel[]): Tunnel[] {
  let best: Tunnel[] = [];
  for (const t of tunnels) {
    const first = best[0];
    const cmp =
      first === undefined
        ? -1
        : t.model.inFlight - first.model.inFlight || t.session.inFlight - first.session.inFlight;
    if (cmp < 0) best = [t];
    else if (cmp === 0) best.push(t);
  }
  return best;
}

/** The hotkey's least loaded tunnel for the model; ties broken at random. */
function chooseTunnel(tunnels: readonly Tunnel[], random: RandomSource): SessionView {
  const best = leastLoaded(tunnels);
  return (best.length === 1 ? best[0] : best[randomIndex(best.length, random)])?.session as SessionView;
}

/**
 * Chooses the session for one request: first a hotkey, by power of two
 * choices among those within their learned limit (two distinct hotkeys drawn
 * at random, the cheaper wins, ties to the first draw; with probability
 * `exploreRate` the first draw is taken as is), or when none is, among those
 * with room under their advertised ceiling; then that hotkey's least loaded
 * tunnel. Only tunnels whose model offers the request's `kind` count.
 * Tunnels, advertised concurrency and router connections therefore
 * buy no share. `exclude` holds hotkeys already tried for this request.
 * Returns undefined when nobody can serve the model now (open breakers
 * included: see RoutingBook).
 *
 * Pure: the snapshots, the exclusions and the random source are its only inputs.
 */
export function pick(
  sessions: readonly SessionView[],
  routes: ReadonlyMap<string, HotkeyRoute>,
  modelId: string,
  random: RandomSource,
  exclude: ReadonlySet<string> = new Set(),
  opts: PickerOptions = PICKER_DEFAULTS,
  kind: ModelKind = "chat",
): SessionView | undefined {
  const { within, overflow } = hotkeyCandidates(sessions, routes, modelId, exclude, kind);
  const pool = within.length > 0 ? within : overflow;
  if (pool.length === 0) return undefined;
  const hotkey = chooseHotkey(pool, random, pool === within, opts);
  return chooseTunnel(hotkey.tunnels, random);
}

/**
 * Whether a hotkey outside `exclude` would serve the model (and `kind`)
 * once it had room: one of its active tunnels offers it and its breaker
 * admits. When `pick` finds nobody but this holds, every such hotkey is
 * busy, and a request may wait for one of them; when it does not hold
 * (no miner, only ghosts or open breakers), waiting is pointless.
 */
export function wouldServe(
  sessions: readonly SessionView[],
  routes: ReadonlyMap<string, HotkeyRoute>,
  modelId: string,
  exclude: ReadonlySet<string> = new Set(),
  kind: ModelKind = "chat",
): boolean {
  return sessions.some((s) => {
    if (s.state !== "active" || exclude.has(s.hotkey)) return false;
    const m = s.models.find((x) => x.id === modelId);
    return m !== undefined && offersKind(m.kinds, kind) && (routes.get(s.hotkey) ?? DEFAULT_ROUTE).available;
  });
}

/**
 * One trial of `pick` for a request of the model, looked at from one tunnel:
 * whether the request would go to tunnel `sessionId` of `hotkey`.
 * "never" when no load could send it there (the tunnel is not active or does
 * not offer the model and kind, the hotkey is excluded or its breaker is
 * open); "no" or "yes" otherwise, drawn so that the chance of "yes" is
 * `pick`'s chance of choosing that tunnel now times a constant (half the
 * pool's size): the trial is `pick` given that the hotkey is one of its two
 * draws, so a loaded hotkey rarely says yes and an idle one usually does.
 * A request sent at the first "yes" of trials taken at random times
 * therefore finds the tunnel in the states a routed user request finds it
 * in: how a probe arrives like a user's request (ProbeService).
 */
export function pickTrial(
  sessions: readonly SessionView[],
  routes: ReadonlyMap<string, HotkeyRoute>,
  modelId: string,
  target: { readonly hotkey: string; readonly sessionId: string },
  random: RandomSource,
  exclude: ReadonlySet<string> = new Set(),
  opts: PickerOptions = PICKER_DEFAULTS,
  kind: ModelKind = "chat",
): "yes" | "no" | "never" {
  const session = sessions.find((s) => s.sessionId === target.sessionId);
  const model = session?.models.find((m) => m.id === modelId);
  if (
    session === undefined ||
    session.hotkey !== target.hotkey ||
    session.state !== "active" ||
    model === undefined ||
    !offersKind(model.kinds, kind) ||
    exclude.has(target.hotkey) ||
    !(routes.get(target.hotkey) ?? DEFAULT_ROUTE).available
  ) {
    return "never";
  }
  const { within, overflow } = hotkeyCandidates(sessions, routes, modelId, exclude, kind);
  const pool = within.length > 0 ? within : overflow;
  const self = pool.findIndex((c) => c.hotkey === target.hotkey);
  // Full, or past its limit while others are within theirs: no request would go there now.
  if (self < 0) return "no";
  const me = pool[self] as HotkeyCandidate;
  const ties = leastLoaded(me.tunnels);
  if (!ties.some((t) => t.session.sessionId === target.sessionId) || random() * ties.length >= 1) return "no";
  const n = pool.length;
  if (n === 1) return "yes";
  const explore = pool === within && random() < opts.exploreRate;
  let j = randomIndex(n - 1, random);
  if (j >= self) j++;
  const lat = latencies(pool, opts);
  const mineLat = lat[self] as number;
  const theirLat = lat[j] as number;
  const best = Math.min(mineLat, theirLat);
  const mine = hotkeyCost(me.inFlight, mineLat, best, opts);
  const theirs = hotkeyCost((pool[j] as HotkeyCandidate).inFlight, theirLat, best, opts);
  // Each of the two is the first draw half the time; the first wins ties and is taken as is when exploring.
  if (random() < 0.5) return explore || !(theirs < mine) ? "yes" : "no";
  return !explore && mine < theirs ? "yes" : "no";
}
