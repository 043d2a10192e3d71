import { TensorClawError } from "../../common/errors.js";

/**
 * Money in TensorClaw is a whole number of micro-USD ("micros"): credits,
 * balances, holds, costs and spend are all integers, so sums are exact and
 * Redis (Lua numbers are doubles) and the embedded ledger agree to the unit.
 * Prices stay as the catalogue has them (USD per million tokens, which is
 * micro-USD per token); a request's cost is rounded up to the micro once.
 */
export type Micros = number;

/** Micros in one USD. */
export const MICROS_PER_USD = 1_000_000;
/** Largest amount one credit entry may carry (USD 1e9: a typo guard). */
export const MAX_CREDIT_MICROS = 1e15;

/** USD (as typed by an operator: "10", "2.5") to micros, rounded to the nearest micro. */
export function usdToMicros(usd: number): Micros {
  if (!Number.isFinite(usd))
    throw new TensorClawError("invalid_request", `amount must be a number, got ${usd}`);
  const m = Math.round(usd * MICROS_PER_USD);
  if (Math.abs(m) > MAX_CREDIT_MICROS) {
    throw new TensorClawError(
      "invalid_request",
      `amount must be at most ${MAX_CREDIT_MICROS / MICROS_PER_USD} USD`,
    );
  }
  return m;
}

/** Micros to USD, for display and the OpenRouter-shaped endpoints. */
export function microsToUsd(m: Micros): number {
  return m / MICROS_PER_USD;
}

/** Picos (1e-12 USD) per micro. */
const PICOS_PER_MICRO = 1_000_000n;

/** A price in USD per million tokens as whole pico-USD per token (prices keep 6 decimals). */
function picosPerToken(pricePerM: number): bigint {
  return BigInt(Math.round(pricePerM * 1_000_000));
}

/**
 * What credited tokens cost at a model's prices (USD per million tokens),
 * in micros, rounded up: exact integer arithmetic, so the same counts and
 * prices always give the same cost wherever it is computed.
 */
export function costMicros(
  promptTokens: number,
  completionTokens: number,
  pricePromptPerM: number,
  priceCompletionPerM: number,
): Micros {
  const picos =
    BigInt(promptTokens) * picosPerToken(pricePromptPerM) +
    BigInt(completionTokens) * picosPerToken(priceCompletionPerM);
  return Number((picos + PICOS_PER_MICRO - 1n) / PICOS_PER_MICRO);
}
