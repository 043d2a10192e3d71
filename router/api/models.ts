import type { SessionView } from "../tunnel/types.js";

/** One entry of `GET /v1/models`: the OpenAI model object plus routing facts. */
export interface ModelEntry {
  id: string;
  object: "model";
  /** Unix seconds since the model has been continuously offered by someone (earliest session). */
  created: number;
  owned_by: "tensorclaw";
  /**
   * Context window in tokens that every active miner serving the model
   * supports (the smallest one advertised), or null when none advertised it.
   */
  context_length: number | null;
  /** Active miner sessions offering the model now. */
  miners: number;
  /** Requests they could take at once (sum of their concurrency limits). */
  max_concurrency: number;
}

/**
 * The union of models offered by active sessions, sorted by id. Ghost,
 * banned and draining sessions do not count: a model listed here can be
 * served now.
 */
export function listModels(sessions: readonly SessionView[]): ModelEntry[] {
  const byId = new Map<string, ModelEntry & { contexts: number[] }>();
  for (const s of sessions) {
    if (s.state !== "active") continue;
    for (const m of s.models) {
      let e = byId.get(m.id);
      if (e === undefined) {
        e = {
          id: m.id,
          object: "model",
          created: Math.floor(s.connectedSinceMs / 1000),
          owned_by: "tensorclaw",
          context_length: null,
          miners: 0,
          max_concurrency: 0,
          contexts: [],
        };
        byId.set(m.id, e);
      }
      e.miners++;
      e.max_concurrency += m.maxConcurrency;
      e.created = Math.min(e.created, Math.floor(s.connectedSinceMs / 1000));
      if (m.contextLength > 0) e.contexts.push(m.contextLength);
    }
  }
  return [...byId.values()]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map(({ contexts, ...e }) => ({
      ...e,
      context_length: contexts.length > 0 ? Math.min(...contexts) : null,
    }));
}
