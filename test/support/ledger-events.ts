import type { UsageEvent } from "../../router/usage-event.js";

/** Miners and models the deterministic event streams spread over. */
export const WRITER_MINERS = 8;
export const WRITER_MODELS = 3;

/**
 * Event `i` of writer `writer`: a deterministic id, miner, model and token
 * counts, so a test can compute exactly what the ledger must hold.
 */
export function writerEvent(writer: string, i: number, nowMs: number): UsageEvent {
  return {
    requestId: `${writer}-${i}`,
    minerHotkey: `miner-${i % WRITER_MINERS}`,
    model: `model-${i % WRITER_MODELS}`,
    promptTokens: 10 + (i % 97),
    completionTokens: 1 + ((i * 7) % 13),
    outcome: "completed",
    startedAtMs: nowMs - 5,
    finishedAtMs: nowMs,
  };
}

/** Expected totals per "miner/model" for events [from, to) of a writer. */
export function expectedTotals(
  writer: string,
  from: number,
  to: number,
  into = new Map<string, { tokens: number; requests: number }>(),
): Map<string, { tokens: number; requests: number }> {
  for (let i = from; i < to; i++) {
    const e = writerEvent(writer, i, 0);
    const key = `${e.minerHotkey}/${e.model}`;
    const cur = into.get(key) ?? { tokens: 0, requests: 0 };
    cur.tokens += e.promptTokens + e.completionTokens;
    cur.requests += 1;
    into.set(key, cur);
  }
  return into;
}
