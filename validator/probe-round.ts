import type { Logger } from "../common/logger.js";
import { type MinerSession, MinerState } from "../gen/tensorclaw/v1/directory.js";
import type { ProbeResponse } from "../gen/tensorclaw/v1/probe.js";
import { RECONNECT_GRACE_MS } from "./reconnect-grace.js";
import type { DirectoryListing, ProbeOutcome } from "./router-client.js";
import type { ProbeEntry } from "./state-store.js";

/** The router call a probe round needs besides the probes themselves (a {@link RouterClient} has it). */
export interface ProbeRouter {
  listMiners(): Promise<DirectoryListing>;
}

/** Sends one probe to a miner (a {@link Prober} does: it writes the request and books audits). */
export type ProbeOne = (hotkey: string, sessions: readonly MinerSession[]) => Promise<ProbeOutcome>;

/** Settings of one round. */
export interface ProbeRoundOptions {
  /** Most probes in flight at once. */
  readonly concurrency: number;
  /** How each miner is probed. */
  readonly probe: ProbeOne;
  /** Unix ms. */
  readonly clock: () => number;
  readonly logger: Logger;
  /**
   * Miners the validator has seen pass a probe (in its kept history). One
   * that no router lists this round is not connected anywhere: it gets a
   * failed probe (a ghost, base 0) instead of keeping its last pass.
   */
  readonly known?: readonly string[];
  /**
   * How long after a router started its listing is taken as incomplete
   * (miners still reconnecting), so absence from it proves nothing
   * (default RECONNECT_GRACE_MS).
   */
  readonly reconnectGraceMs?: number;
}

/** What one round saw. */
export interface ProbeRoundResult {
  readonly startedAtMs: number;
  readonly finishedAtMs: number;
  /** The directory listing the round was based on. */
  readonly sessions: readonly MinerSession[];
  /** Hotkeys the round probed. */
  readonly targets: readonly string[];
  /**
   * Results to store: one per probed miner the router answered for, a
   * failure for each absent one and each disconnected one.
   */
  readonly entries: readonly ProbeEntry[];
  /** Miners gone between listing and probing (NOT_FOUND): recorded as failed. */
  readonly absent: readonly string[];
  /**
   * Known miners no router listed (recorded as failed). Empty when some
   * replica did not answer the listing: the miner may be connected there.
   */
  readonly disconnected: readonly string[];
  /** Probes the router failed to run (nothing recorded: not the miner's fault). */
  readonly routerErrors: readonly { readonly hotkey: string; readonly detail: string }[];
}

/**
 * Hotkeys worth probing: connected with at least one model on a session
 * that is active or ghost (a ghost must be probed to come back; banned and
 * draining sessions take no traffic, so a probe would say nothing).
 */
export function probeTargets(sessions: readonly MinerSession[]): string[] {
  const out = new Set<string>();
  for (const s of sessions) {
    if (s.models.length === 0) continue;
    if (s.state === MinerState.MINER_STATE_ACTIVE || s.state === MinerState.MINER_STATE_GHOST)
      out.add(s.hotkey);
  }
  return [...out].sort();
}

/** Runs `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

function finiteMs(x: number): number {
  return Number.isFinite(x) && x >= 0 ? x : 0;
}

/**
 * The history entry of a probe the router ran. Its response time is the
 * time to liveness (five tokens), which for a liveness probe is the whole
 * probe and for an audit leaves out the rest of a long answer; routers
 * that do not report it give the whole latency.
 */
export function probedEntry(hotkey: string, r: ProbeResponse, atMs: number): ProbeEntry {
  const ok = r.ok && !r.ghost;
  const live = finiteMs(r.livenessMs);
  return {
    hotkey,
    record: {
      atMs,
      ok,
      latencyMs: ok && live > 0 ? live : finiteMs(r.latencyMs),
      ttftMs: finiteMs(r.ttftMs),
    },
  };
}

/** A failed probe for a miner that could not be reached at all. */
export function failedEntry(hotkey: string, atMs: number): ProbeEntry {
  return { hotkey, record: { atMs, ok: false, latencyMs: 0, ttftMs: 0 } };
}

/**
 * Known miners that no replica lists in any state. Nothing when the
 * listing is partial: a replica that did not answer may hold the tunnel;
 * nor when a replica started less than `graceMs` before the listing: its
 * miners may still be reconnecting.
 */
export function disconnectedMiners(
  listing: DirectoryListing,
  known: readonly string[],
  graceMs = RECONNECT_GRACE_MS,
): string[] {
  if ((listing.unanswered?.length ?? 0) > 0) return [];
  const since = listing.servingSinceMs;
  if (since > 0n && listing.reportTimeMs - since < BigInt(graceMs)) return [];
  const listed = new Set(listing.sessions.map((s) => s.hotkey));
  return [...new Set(known)].filter((hk) => !listed.has(hk)).sort();
}

/**
 * One probe round: list the miners (throws RouterUnreachableError when no
 * replica answers, so the caller skips the round), then probe every
 * connected miner concurrently with bounded parallelism. A known miner that
 * is not connected to any router (or whose tunnel closed before its probe)
 * counts as a failed probe: it serves nobody, so it is a ghost.
 */
export async function runProbeRound(router: ProbeRouter, opts: ProbeRoundOptions): Promise<ProbeRoundResult> {
  const startedAtMs = opts.clock();
  const listing = await router.listMiners();
  const targets = probeTargets(listing.sessions);
  const outcomes = await mapBounded(targets, opts.concurrency, async (hotkey) => {
    // Signing is synchronous CPU work: yield first so probes already signed
    // leave now, instead of all waiting for the last signature.
    await new Promise<void>((resolve) => setImmediate(resolve));
    const outcome = await opts.probe(hotkey, listing.sessions);
    return { hotkey, outcome, atMs: opts.clock() };
  });
  const entries: ProbeEntry[] = [];
  const absent: string[] = [];
  const routerErrors: { hotkey: string; detail: string }[] = [];
  for (const { hotkey, outcome, atMs } of outcomes) {
    if (outcome.kind === "probed") {
      entries.push(probedEntry(hotkey, outcome.response, atMs));
    } else if (outcome.kind === "absent") {
      absent.push(hotkey);
      entries.push(failedEntry(hotkey, atMs));
    } else {
      routerErrors.push({ hotkey, detail: outcome.detail });
    }
  }
  const disconnected = disconnectedMiners(listing, opts.known ?? [], opts.reconnectGraceMs);
  const finishedAtMs = opts.clock();
  for (const hotkey of disconnected) entries.push(failedEntry(hotkey, finishedAtMs));
  opts.logger.info(
    {
      miners: targets.length,
      passed: entries.filter((e) => e.record.ok).length,
      failed: entries.filter((e) => !e.record.ok).length,
      absent: absent.length,
      disconnected: disconnected.length,
      routerErrors: routerErrors.length,
      ms: finishedAtMs - startedAtMs,
    },
    "probe round finished",
  );
  if (routerErrors.length > 0) {
    opts.logger.warn(
      { sample: routerErrors.slice(0, 5) },
      "router failed some probes; not punishing those miners",
    );
  }
  return {
    startedAtMs,
    finishedAtMs,
    sessions: listing.sessions,
    targets,
    entries,
    absent,
    disconnected,
    routerErrors,
  };
}
