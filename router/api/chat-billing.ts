import { TensorClawError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { TokenCount } from "../../common/tokens/encodings.js";
import { countPromptTokens } from "../../common/tokens/prompt.js";
import type { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { AccountSettings, BillingStore, HoldResult, RequestApp } from "../billing/billing.js";
import { costMicros, type Micros, microsToUsd } from "../billing/money.js";
import type { CatalogueEntry } from "../catalogue/entry.js";
import {
  FINISH_TOKEN_ALLOWANCE,
  maxPromptTokens,
  PER_MESSAGE_ALLOWANCE,
  PER_REQUEST_ALLOWANCE,
  type PromptSize,
} from "../usage/clamp.js";
import { type HoldLeaseOptions, HoldLeases, type HoldTicket } from "./hold-leases.js";

/**
 * Billing on the chat endpoint's request path (README, For API users).
 *
 * Before any miner is tried, a request of a metered key reserves its
 * worst-case cost on the key's balance (a hold): the most prompt and
 * completion tokens it could be credited, at the model's catalogue prices.
 * Nothing short of the whole worst case is served, so concurrent requests
 * cannot overdraw a balance. The request's final usage event then carries
 * what it really cost (the credited tokens at the same prices), and the
 * billing store settles it; a request that ends with no usage event has its
 * hold released.
 *
 * Keys never configured are unmetered: no hold, but their spend is still
 * recorded. A key's settings are answered from memory for about a second,
 * so the request path of an unmetered key never waits for the store.
 */

/** How long a key's billing settings are answered from memory. */
export const DEFAULT_BILLING_FRESH_MS = 1000;
/** A hold outlives its request's deadline by this much, then expires by itself. */
export const HOLD_TTL_MARGIN_MS = 60_000;
/** `retry-after` of the 503 for a metered key while the billing store is unreachable. */
export const BILLING_RETRY_AFTER_MS = 1000;
/** Most key settings remembered at once. */
const MAX_CACHED_SETTINGS = 10_000;

/** A model's prices, USD per million tokens. */
export type Prices = Pick<CatalogueEntry, "pricePromptPerM" | "priceCompletionPerM">;

/** How one request of an API key is billed, decided before any miner is tried. */
export interface RequestBilling {
  readonly keyId: string;
  /** The key is metered: its costs come off its balance. */
  readonly metered: boolean;
  /** Metered and the model has a non-zero price: its tokens were paid for. */
  readonly paid: boolean;
  /** The model's prices when the request started (the request is charged at these). */
  readonly prices: Prices;
  /** The hold placed on the key's balance; 0 when none was (unmetered, or a free model). */
  readonly holdMicros: Micros;
  /** Where the hold came from (a lease); undefined when none was placed. */
  readonly ticket?: HoldTicket | undefined;
  /** The app the request named (`HTTP-Referer`, `X-Title`), for its generation record. */
  readonly app?: RequestApp | undefined;
}

/** The most tokens one request could be credited, and the router's own prompt count when it made one. */
export interface WorstCase {
  readonly promptTokens: number;
  readonly completionTokens: number;
  /** Prompt tokens as the router counts them for credit (reused at the end); undefined without a tokenizer. */
  readonly countedPrompt: number | undefined;
}

/**
 * The most tokens a request can be credited (router/usage/token-credit.ts,
 * clamp.ts): the router's prompt count plus the template allowances (by
 * bytes while the model's tokenizer is not loaded), and for each of its
 * `choices` the completion ceiling plus the end-of-turn allowance.
 */
export function worstCaseTokens(
  chat: ChatRequest,
  prompt: PromptSize,
  ceiling: number,
  choices: number,
  count: TokenCount | undefined,
): WorstCase {
  const completionTokens = choices * (ceiling + FINISH_TOKEN_ALLOWANCE);
  if (count === undefined) {
    return { promptTokens: maxPromptTokens(prompt), completionTokens, countedPrompt: undefined };
  }
  const counted = countPromptTokens(chat, count);
  return {
    promptTokens: counted + PER_MESSAGE_ALLOWANCE * chat.messages.length + PER_REQUEST_ALLOWANCE,
    completionTokens,
    countedPrompt: counted,
  };
}

/** Whether a model costs anything. */
export function priced(p: Prices): boolean {
  return p.pricePromptPerM > 0 || p.priceCompletionPerM > 0;
}

/**
 * What a request is charged for its credited tokens: their cost at the
 * request's prices, and for a metered key never more than its hold (a
 * miner that ignored `max_tokens` earns its credit, but the user pays no
 * more than the worst case reserved for them).
 */
export function chargeMicros(b: RequestBilling, promptTokens: number, completionTokens: number): Micros {
  const c = costMicros(
    promptTokens,
    completionTokens,
    b.prices.pricePromptPerM,
    b.prices.priceCompletionPerM,
  );
  return b.metered ? Math.min(c, b.holdMicros) : c;
}

/** USD with six decimals, for messages. */
function usd(m: Micros): string {
  return `$${microsToUsd(m).toFixed(6)}`;
}

/** The 402 for a refused hold, saying what is short and what is available. */
export function insufficientQuota(
  refused: Extract<HoldResult, { ok: false }>,
  neededMicros: Micros,
): TensorClawError {
  const need = usd(neededMicros);
  const have = usd(Math.max(0, refused.availableMicros));
  const message =
    refused.reason === "budget"
      ? `This request may cost up to ${need} and ${have} of this key's daily budget is left today (UTC). ` +
        "Lower max_tokens, or wait for the budget to reset at 00:00 UTC."
      : `This request may cost up to ${need} and this key has ${have} of credit available. ` +
        "Add credit to the key, or lower max_tokens.";
  return new TensorClawError("insufficient_quota", message);
}

/**
 * The API's error for a billing store call that failed: the store's refusal
 * of malformed input keeps its code, anything else (Redis down, a timeout)
 * is a retryable 503 whose detail stays in the log.
 */
export function billingStoreError(cause: unknown): TensorClawError {
  if (cause instanceof TensorClawError && cause.code === "invalid_request") return cause;
  return new TensorClawError("unavailable", "The billing store is unreachable; retry shortly.", {
    retryAfterMs: BILLING_RETRY_AFTER_MS,
    cause,
  });
}

interface Cached {
  readonly settings: AccountSettings | undefined;
  readonly atMs: number;
}

/**
 * The chat endpoint's view of a BillingStore: key settings cached for
 * `freshForMs`, holds that throw the API's errors, releases that never throw.
 *
 * While the store is unreachable, a key last seen unmetered is still served
 * unmetered (its spend is recorded once the store is back, as usage is); a
 * metered key, or one whose settings were never read, gets a retryable 503:
 * a metered key is never served without a hold.
 */
export class KeyBilling {
  readonly store: BillingStore;
  readonly #freshForMs: number;
  readonly #cache = new Map<string, Cached>();
  /** Reads in flight, so a burst of one key's requests asks the store once. */
  readonly #reading = new Map<string, Promise<AccountSettings | undefined>>();

  readonly #leases: HoldLeases;

  constructor(
    store: BillingStore,
    logger: Logger,
    freshForMs = DEFAULT_BILLING_FRESH_MS,
    leases: HoldLeaseOptions = {},
  ) {
    this.store = store;
    this.#freshForMs = freshForMs;
    this.#leases = new HoldLeases(store, logger, leases);
  }

  /**
   * A key's settings (undefined: unmetered): synchronously while the
   * remembered answer is fresh, else a promise of the store's. Rejects with
   * `unavailable` when the store cannot be read and the key is not known to
   * be unmetered.
   */
  settings(keyId: string, nowMs: number): AccountSettings | undefined | Promise<AccountSettings | undefined> {
    const hit = this.#cache.get(keyId);
    if (hit !== undefined && nowMs - hit.atMs < this.#freshForMs) return hit.settings;
    let p = this.#reading.get(keyId);
    if (p === undefined) {
      p = this.#read(keyId, nowMs, hit);
      this.#reading.set(keyId, p);
    }
    return p;
  }

  async #read(keyId: string, nowMs: number, last: Cached | undefined): Promise<AccountSettings | undefined> {
    try {
      const settings = await this.store.settings(keyId);
      if (this.#cache.size >= MAX_CACHED_SETTINGS) this.#cache.clear();
      this.#cache.set(keyId, { settings, atMs: nowMs });
      return settings;
    } catch (cause) {
      if (last !== undefined && last.settings === undefined) return undefined;
      throw billingStoreError(cause);
    } finally {
      this.#reading.delete(keyId);
    }
  }

  /**
   * Holds a request's worst case, from a lease (hold-leases.ts). Throws
   * `insufficient_quota` (402) when the key cannot cover it, `unavailable`
   * (503) when the store fails.
   */
  async hold(keyId: string, amountMicros: Micros, clock: () => number, ttlMs: number): Promise<HoldTicket> {
    let r: Awaited<ReturnType<HoldLeases["draw"]>>;
    try {
      r = await this.#leases.draw(keyId, amountMicros, clock, ttlMs);
    } catch (cause) {
      throw billingStoreError(cause);
    }
    if ("ok" in r) throw insufficientQuota(r, amountMicros);
    return r;
  }

  /** What this router's leases of a key hold beyond its requests (HoldLeases.unusedMicros). */
  unusedMicros(keyId: string): Micros {
    return this.#leases.unusedMicros(keyId);
  }

  /** Ends a request's hold: `costMicros` (0 when it recorded no usage) is what it is charged. */
  finish(ticket: HoldTicket, costMicros: Micros): void {
    this.#leases.finish(ticket, costMicros);
  }
}
