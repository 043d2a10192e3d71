import { costMicros } from "../billing/money.js";
import type { CatalogueEntry } from "../catalogue/entry.js";
import { HOLD_TTL_MARGIN_MS, type KeyBilling, priced, type RequestBilling } from "./chat-billing.js";

/** A request's most creditable tokens (what a metered key's hold covers), and the prompt count made for it. */
export interface HoldWorstCase {
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** The prompt's token count made on the way, reused for the credit; undefined when none was made. */
  readonly counted: number | undefined;
}

/**
 * Decides how a key's request for one model is billed and, for a metered
 * key and a priced model, holds the request's worst-case cost before any
 * miner is tried (`worst` is computed only then: tokenizing costs). An
 * unmetered key whose settings are remembered costs no wait. Throws
 * `insufficient_quota` (402) when the hold is refused, `unavailable` (503)
 * when the store cannot bill a metered key now. (Chat, whose hold covers
 * every `models` fallback, has its own.)
 */
export async function holdForModel(
  billing: KeyBilling,
  keyId: string,
  entry: CatalogueEntry,
  opts: { readonly clock: () => number; readonly requestTimeoutMs: number; readonly nowMs: number },
  worst: () => HoldWorstCase,
): Promise<{ billing: RequestBilling; counted: number | undefined }> {
  let settings = billing.settings(keyId, opts.nowMs);
  if (settings instanceof Promise) settings = await settings;
  const prices = { pricePromptPerM: entry.pricePromptPerM, priceCompletionPerM: entry.priceCompletionPerM };
  const metered = settings?.metered === true;
  if (!metered || !priced(prices)) {
    return { billing: { keyId, metered, paid: false, prices, holdMicros: 0 }, counted: undefined };
  }
  const w = worst();
  const holdMicros = costMicros(
    w.promptTokens,
    w.completionTokens,
    prices.pricePromptPerM,
    prices.priceCompletionPerM,
  );
  const ticket = await billing.hold(
    keyId,
    holdMicros,
    opts.clock,
    opts.requestTimeoutMs + HOLD_TTL_MARGIN_MS,
  );
  return {
    billing: { keyId, metered: true, paid: true, prices, holdMicros, ticket },
    counted: w.counted,
  };
}
