import type { UsageEvent } from "../../router/usage/event.js";

/** Miners and models the deterministic event streams spread over. */
export const WRITER_MINERS = 8;
export const WRITER_MODELS = 3;

/**
 * Event `i` of writer `writer`: a deterministic id, miner, model and token
 * counts, so a test can compute exactly what the ledger must hold. With
 * `origin`, the event carries (origin, seq = i) as a current router's do.
 */
export function writerEvent(writer: string, i: number, nowMs: number, origin?: string): UsageEvent {
  const event: UsageEvent = {
    requestId: `${writer}-${i}`,
    minerHotkey: `miner-${i % WRITER_MINERS}`,
    model: `model-${i % WRITER_MODELS}`,
    promptTokens: 10 + (i % 97),
    completionTokens: 1 + ((i * 7) % 13),
    outcome: "completed",
    startedAtMs: nowMs - 5,
    finishedAtMs: nowMs,
  };
  // With an origin, `i` is the seq: the stream is one router's hand-off order (per miner
  // it has gaps, which the ledger does not mind).
  return origin === undefined ? event : { ...event, origin, seq: i };
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
