/**
 * OpenRouter's extensions to the chat completions body, decided field by
 * field (README, "OpenRouter compatibility"): honoured where it is cheap
 * (`models` fallbacks, `usage.include`, `provider.max_price`), refused with
 * a 400 where ignoring would silently break what the caller relies on
 * (naming providers, data policies, plugins, prompt transforms), and
 * accepted and ignored where that is harmless (`provider.sort`,
 * `provider.allow_fallbacks`, `transforms: []`, `route: "fallback"`).
 * Pure: the chat endpoint resolves the model ids against its catalogue.
 */
import { TensorClawError } from "../../common/errors.js";

/** Most ids in `models` (OpenRouter's own limit is of this order). */
export const MAX_FALLBACK_MODELS = 8;
const MAX_ID_CHARS = 256;

/** The OpenRouter fields of one request, checked. */
export interface OpenRouterAsk {
  /**
   * The models to try, in order: `model` first when given, then `models`,
   * each once. Never empty when the body names any model.
   */
  readonly models: readonly string[];
  /** `usage.include`: the answer carries its usage (a stream's final usage chunk too). */
  readonly includeUsage: boolean;
  /** `provider.max_price`, in USD per million tokens: models priced above are not tried. */
  readonly maxPrice: { readonly prompt?: number; readonly completion?: number } | undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bad(param: string, message: string): never {
  throw new TensorClawError("invalid_request", message, { param });
}

function isNonEmptyArray(v: unknown): boolean {
  return Array.isArray(v) && v.length > 0;
}

/** `models`: 1 to 8 model ids. */
function parseModels(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  if (
    !Array.isArray(v) ||
    v.length === 0 ||
    v.length > MAX_FALLBACK_MODELS ||
    !v.every((m) => typeof m === "string" && m !== "" && m.length <= MAX_ID_CHARS)
  ) {
    bad("models", `\`models\` must be an array of 1 to ${MAX_FALLBACK_MODELS} model ids.`);
  }
  return v as string[];
}

function price(v: unknown, param: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0)
    bad(param, `\`${param}\` must be a number >= 0.`);
  return v;
}

/** `provider`: the routing preferences of a multi-provider router; this one has one provider, its miners. */
function parseProvider(v: unknown): OpenRouterAsk["maxPrice"] {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) bad("provider", "`provider` must be an object.");
  for (const key of ["order", "only"]) {
    if (isNonEmptyArray(v[key])) {
      bad(
        `provider.${key}`,
        `\`provider.${key}\` names providers; TensorClaw routes every request to its own miners and cannot honour it.`,
      );
    }
  }
  if (v.data_collection === "deny" || v.zdr === true) {
    bad(
      v.zdr === true ? "provider.zdr" : "provider.data_collection",
      "TensorClaw's miners are independent operators: it cannot promise that none keeps request data.",
    );
  }
  if (isNonEmptyArray(v.quantizations)) {
    bad(
      "provider.quantizations",
      "TensorClaw does not know its miners' quantizations and cannot filter by them.",
    );
  }
  const mp = v.max_price;
  if (mp === undefined || mp === null) return undefined;
  if (!isObject(mp)) bad("provider.max_price", "`provider.max_price` must be an object.");
  for (const key of ["request", "image"]) {
    // Never charged here: a bound on them always holds.
    price(mp[key], `provider.max_price.${key}`);
  }
  const prompt = price(mp.prompt, "provider.max_price.prompt");
  const completion = price(mp.completion, "provider.max_price.completion");
  return { ...(prompt === undefined ? {} : { prompt }), ...(completion === undefined ? {} : { completion }) };
}

/**
 * Checks the OpenRouter fields of a chat body and says which models to try;
 * undefined for a body that is no object (the chat parser refuses it).
 * Throws `invalid_request` (400) naming the field at fault.
 */
export function parseOpenRouterFields(body: unknown): OpenRouterAsk | undefined {
  if (!isObject(body)) return undefined;
  const fallbacks = parseModels(body.models);
  const first = body.model;
  const models: string[] = [];
  for (const m of [...(typeof first === "string" && first !== "" ? [first] : []), ...fallbacks]) {
    if (!models.includes(m)) models.push(m);
  }
  const route = body.route;
  if (route !== undefined && route !== null && route !== "fallback") {
    bad("route", '`route` may only be "fallback" (what `models` does).');
  }
  const transforms = body.transforms;
  if (transforms !== undefined && transforms !== null) {
    if (!Array.isArray(transforms)) bad("transforms", "`transforms` must be an array.");
    if (transforms.length > 0) {
      bad(
        "transforms",
        "Prompt transforms (such as middle-out) are not supported; send `transforms: []` or none.",
      );
    }
  }
  if (isNonEmptyArray(body.plugins)) {
    bad("plugins", "Plugins (web search, file parsing, ...) are not supported.");
  }
  let includeUsage = false;
  const usage = body.usage;
  if (usage !== undefined && usage !== null) {
    if (!isObject(usage)) bad("usage", "`usage` must be an object.");
    if (usage.include !== undefined && typeof usage.include !== "boolean") {
      bad("usage.include", "`usage.include` must be a boolean.");
    }
    includeUsage = usage.include === true;
  }
  return { models, includeUsage, maxPrice: parseProvider(body.provider) };
}

/**
 * The body with `model` set to the first model to try, when only `models`
 * named any (OpenRouter makes `model` optional then).
 */
export function withFirstModel(body: unknown, ask: OpenRouterAsk | undefined): unknown {
  if (!isObject(body) || ask === undefined) return body;
  const first = ask.models[0];
  return (body.model === undefined || body.model === null) && first !== undefined
    ? { ...body, model: first }
    : body;
}

/** Whether a model's prices (USD per million tokens) are within `provider.max_price`. */
export function withinMaxPrice(
  maxPrice: OpenRouterAsk["maxPrice"],
  prices: { readonly pricePromptPerM: number; readonly priceCompletionPerM: number },
): boolean {
  if (maxPrice === undefined) return true;
  if (maxPrice.prompt !== undefined && prices.pricePromptPerM > maxPrice.prompt) return false;
  if (maxPrice.completion !== undefined && prices.priceCompletionPerM > maxPrice.completion) return false;
  return true;
}
