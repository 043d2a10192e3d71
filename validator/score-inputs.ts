import { successRate } from "../common/business-points.js";
import { type MinerSession, MinerState } from "../gen/tensorclaw/v1/directory.js";
import type { MinerUsage } from "../gen/tensorclaw/v1/usage.js";
import type { MinerInput, ProbeRecord } from "./scoring.js";

/**
 * True when a hotkey is connected now and offers at least one model: some
 * session of it that takes or may regain traffic (active, ghost, draining)
 * lists a model. Banned sessions do not count.
 */
export function isAvailable(sessions: readonly MinerSession[], hotkey: string): boolean {
  return sessions.some(
    (s) => s.hotkey === hotkey && s.models.length > 0 && s.state !== MinerState.MINER_STATE_BANNED,
  );
}

/**
 * Joins what the router and the store know into one input per miner: every
 * hotkey that is connected, has probe history, has usage, or is in `also`
 * (the metagraph's hotkeys, so registered but silent miners show up at 0).
 * `failedModels` (audit/verdicts.ts `failedModelsByHotkey`) names each
 * hotkey's models whose audits failed; a verdict alone adds no miner.
 */
export function buildMinerInputs(
  sessions: readonly MinerSession[],
  history: ReadonlyMap<string, readonly ProbeRecord[]>,
  usage: readonly MinerUsage[],
  also: readonly string[] = [],
  failedModels: ReadonlyMap<string, readonly string[]> = new Map(),
): MinerInput[] {
  const usageBy = new Map<string, MinerUsage>();
  for (const u of usage) if (!usageBy.has(u.hotkey)) usageBy.set(u.hotkey, u);
  const hotkeys = new Set<string>([
    ...sessions.map((s) => s.hotkey),
    ...history.keys(),
    ...usageBy.keys(),
    ...also,
  ]);
  return [...hotkeys].sort().map((hotkey) => ({
    hotkey,
    available: isAvailable(sessions, hotkey),
    probes: history.get(hotkey) ?? [],
    usage: (usageBy.get(hotkey)?.models ?? []).map((m) => ({
      model: m.model,
      promptTokens: Number(m.promptTokens),
      completionTokens: Number(m.completionTokens),
      paidPromptTokens: Number(m.paidPromptTokens),
      paidCompletionTokens: Number(m.paidCompletionTokens),
      tierMultiplier: m.tierMultiplier,
      successRate: successRate({
        served: Number(m.served),
        failedBeforeOutput: Number(m.failedBeforeOutput),
        failedAfterOutput: Number(m.failedAfterOutput),
        deadlineCut: Number(m.deadlineCut),
      }),
    })),
    failedModels: failedModels.get(hotkey) ?? [],
  }));
}
