import { CHAT_ONLY, MODEL_KINDS, type ModelKind } from "../../common/request-kinds.js";
import type { ModelCatalogue } from "../catalogue/catalogue.js";
import type { CatalogueEntry } from "../catalogue/entry.js";
import type { SessionView } from "../tunnel/types.js";

/** Prices in OpenRouter's form: USD per token, as decimal strings. */
export interface ModelPricing {
  prompt: string;
  completion: string;
}

/** One entry of `GET /v1/models`: the OpenAI model object plus catalogue and routing facts. */
export interface ModelEntry {
  id: string;
  object: "model";
  /**
   * Unix seconds since the model has been continuously offered by someone
   * (earliest session); 0 for a catalogue model nobody serves now.
   */
  created: number;
  owned_by: "tensorclaw";
  /**
   * Context window in tokens: the catalogue's when it names one, else the
   * smallest one advertised by the active miners serving the model, else null.
   */
  context_length: number | null;
  /** Catalogue prices (zero for a model outside the catalogue of an open router). */
  pricing: ModelPricing;
  /** Other names of the model that the router accepts. */
  aliases: string[];
  /** Active miner sessions offering the model now. */
  miners: number;
  /** Requests they could take at once (sum of their concurrency limits). */
  max_concurrency: number;
  /**
   * The API paths that reach the model now: those of the request kinds its
   * active miners offer (a chat model: `/v1/chat/completions` and
   * `/v1/responses`). Empty while nobody serves it.
   */
  endpoints: string[];
}

/** The API paths each request kind is served on. */
const KIND_ENDPOINTS: Readonly<Record<ModelKind, readonly string[]>> = Object.freeze({
  chat: ["/v1/chat/completions", "/v1/responses"],
  completion: ["/v1/completions"],
  embedding: ["/v1/embeddings"],
});

/** USD per million tokens → USD per token as a plain decimal string (no exponent). */
export function perTokenPrice(perMillion: number): string {
  if (perMillion === 0) return "0";
  return (perMillion / 1_000_000).toFixed(12).replace(/\.?0+$/, "");
}

/**
 * Every model a user can ask for: each catalogue model (with 0 miners when
 * nobody serves it now), and — on an open router — each other model offered
 * by an active session, sorted by id. Ghost, banned and draining sessions do
 * not count as miners. Session model ids are already the catalogue's ids
 * (the hub applies the catalogue to offers).
 */
export function listModels(sessions: readonly SessionView[], catalogue: ModelCatalogue): ModelEntry[] {
  const live = new Map<
    string,
    { created: number; miners: number; max: number; contexts: number[]; kinds: Set<ModelKind> }
  >();
  for (const s of sessions) {
    if (s.state !== "active") continue;
    for (const m of s.models) {
      let e = live.get(m.id);
      if (e === undefined) {
        e = { created: Number.POSITIVE_INFINITY, miners: 0, max: 0, contexts: [], kinds: new Set() };
        live.set(m.id, e);
      }
      e.miners++;
      e.max += m.maxConcurrency;
      e.created = Math.min(e.created, Math.floor(s.connectedSinceMs / 1000));
      if (m.contextLength > 0) e.contexts.push(m.contextLength);
      for (const k of m.kinds ?? CHAT_ONLY) e.kinds.add(k);
    }
  }
  const ids = new Set([...catalogue.entries.map((e) => e.id), ...live.keys()]);
  const out: ModelEntry[] = [];
  for (const id of [...ids].sort()) {
    const entry: CatalogueEntry | undefined = catalogue.resolve(id);
    if (entry === undefined) continue;
    const l = live.get(id);
    const advertised = l !== undefined && l.contexts.length > 0 ? Math.min(...l.contexts) : null;
    out.push({
      id,
      object: "model",
      created: l === undefined ? 0 : l.created,
      owned_by: "tensorclaw",
      context_length: entry.contextLength > 0 ? entry.contextLength : advertised,
      pricing: {
        prompt: perTokenPrice(entry.pricePromptPerM),
        completion: perTokenPrice(entry.priceCompletionPerM),
      },
      aliases: [...entry.aliases],
      miners: l?.miners ?? 0,
      max_concurrency: l?.max ?? 0,
      endpoints: MODEL_KINDS.filter((k) => l?.kinds.has(k) === true).flatMap((k) => KIND_ENDPOINTS[k]),
    });
  }
  return out;
}
