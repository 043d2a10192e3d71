import { TensorClawError } from "../../common/errors.js";
import { DEFAULT_ENCODING, ENCODINGS, type EncodingName, isEncoding } from "../../common/tokens/encodings.js";
import { checkModelId, checkMultiplier, DEFAULT_TIER_MULTIPLIER } from "../ledger/ledger.js";

/**
 * One model of the operator's catalogue: what the router routes, how it
 * counts the model's tokens, what a token earns (tier) and what it costs
 * (prices). Entries are immutable values; `checkEntry` is the only way in.
 */
export interface CatalogueEntry {
  /** The canonical model id users ask for and miners offer. */
  readonly id: string;
  /** Business-point multiplier of the model's tokens. */
  readonly tier: number;
  /** The BPE encoding the router counts this model's tokens with (see TOKENIZERS). */
  readonly tokenizer: TokenizerName;
  /** Context window in tokens; 0 when the operator did not say. */
  readonly contextLength: number;
  /** USD per million prompt tokens (used by billing; 0 = not priced). */
  readonly pricePromptPerM: number;
  /** USD per million completion tokens. */
  readonly priceCompletionPerM: number;
  /** Other names that mean this model, for users and miners alike. */
  readonly aliases: readonly string[];
}

/**
 * Encodings the router can count with: those gpt-tokenizer ships. A model
 * whose own tokenizer is not among them gets the closest one; the credit
 * allowance covers the difference (see README, Scoring).
 */
export const TOKENIZERS = ENCODINGS;

/** A tokenizer the catalogue can name. */
export type TokenizerName = EncodingName;

/** Tokenizer of an entry that names none, and of every model of an open catalogue. */
export const DEFAULT_TOKENIZER: TokenizerName = DEFAULT_ENCODING;
/** Largest context length accepted (a typo guard). */
export const MAX_CONTEXT_LENGTH = 100_000_000;
/** Largest price per million tokens accepted (a typo guard). */
export const MAX_PRICE_PER_M = 1_000_000;
/** Most aliases one entry may have. */
export const MAX_ALIASES = 16;

function bad(why: string): never {
  throw new TensorClawError("invalid_request", why);
}

/** Checks every field of an entry and returns a frozen copy; throws `invalid_request` naming the fault. */
export function checkEntry(e: CatalogueEntry): CatalogueEntry {
  checkModelId(e.id);
  checkMultiplier(e.tier);
  if (!isEncoding(e.tokenizer)) bad(`tokenizer must be one of ${TOKENIZERS.join(", ")}, got ${e.tokenizer}`);
  if (!Number.isInteger(e.contextLength) || e.contextLength < 0 || e.contextLength > MAX_CONTEXT_LENGTH) {
    bad(`context length must be a whole number from 0 to ${MAX_CONTEXT_LENGTH}, got ${e.contextLength}`);
  }
  for (const [name, price] of [
    ["prompt", e.pricePromptPerM],
    ["completion", e.priceCompletionPerM],
  ] as const) {
    if (!Number.isFinite(price) || price < 0 || price > MAX_PRICE_PER_M) {
      bad(
        `${name} price must be a number from 0 to ${MAX_PRICE_PER_M} (USD per million tokens), got ${price}`,
      );
    }
  }
  if (e.aliases.length > MAX_ALIASES) bad(`at most ${MAX_ALIASES} aliases per model`);
  const aliases = [...new Set(e.aliases.map(checkModelId))].filter((a) => a !== e.id).sort();
  return Object.freeze({ ...e, aliases: Object.freeze(aliases) });
}

/** The entry a model gets when only its id (and maybe tier) is known: open catalogue, `router tiers set`. */
export function defaultEntry(id: string, tier: number = DEFAULT_TIER_MULTIPLIER): CatalogueEntry {
  return checkEntry({
    id,
    tier,
    tokenizer: DEFAULT_TOKENIZER,
    contextLength: 0,
    pricePromptPerM: 0,
    priceCompletionPerM: 0,
    aliases: [],
  });
}

/** The fields of an entry besides id and tier, as stored (JSON, snake_case like the wire formats). */
export interface StoredDetails {
  readonly tokenizer: string;
  readonly context_length: number;
  readonly price_prompt: number;
  readonly price_completion: number;
  readonly aliases: readonly string[];
}

/** The stored form of an entry's details. */
export function detailsOf(e: CatalogueEntry): StoredDetails {
  return {
    tokenizer: e.tokenizer,
    context_length: e.contextLength,
    price_prompt: e.pricePromptPerM,
    price_completion: e.priceCompletionPerM,
    aliases: e.aliases,
  };
}

/**
 * An entry from its stored parts, or undefined when they do not make a valid
 * entry (a hand-edited or corrupt store: the model is then left out rather
 * than routed with made-up details). Missing details mean a tier-only entry.
 */
export function entryFromStored(id: string, tier: number, details: unknown): CatalogueEntry | undefined {
  try {
    if (details === undefined || details === null) return defaultEntry(id, tier);
    const d = details as Partial<StoredDetails>;
    return checkEntry({
      id,
      tier,
      tokenizer: String(d.tokenizer ?? DEFAULT_TOKENIZER) as TokenizerName,
      contextLength: Number(d.context_length ?? 0),
      pricePromptPerM: Number(d.price_prompt ?? 0),
      priceCompletionPerM: Number(d.price_completion ?? 0),
      aliases: Array.isArray(d.aliases) ? d.aliases.map(String) : [],
    });
  } catch {
    return undefined;
  }
}

/** `id<TAB>tier<TAB>tokenizer<TAB>context<TAB>prompt/completion USD per 1M`, then `aliases=a,b` when any. */
export function formatEntryLine(e: CatalogueEntry): string {
  const cols = [e.id, String(e.tier), e.tokenizer, String(e.contextLength)];
  cols.push(`${e.pricePromptPerM}/${e.priceCompletionPerM}`);
  if (e.aliases.length > 0) cols.push(`aliases=${e.aliases.join(",")}`);
  return cols.join("\t");
}
