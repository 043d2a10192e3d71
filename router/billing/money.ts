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

/** Rao (the chain's smallest unit) in one TAO. */
export const RAO_PER_TAO = 1_000_000_000n;

/**
 * What a TAO deposit of `amountRao` buys at `microsPerTao` (credits per TAO
 * in micros), rounded down to the micro: exact integer arithmetic, so the
 * depositor is never credited a fraction of a micro that was not paid for.
 * A bigint, since a transfer's amount has no upper bound the caller may
 * assume; check it against MAX_CREDIT_MICROS before making it an entry.
 */
export function taoToMicros(amountRao: bigint, microsPerTao: bigint): bigint {
  if (amountRao < 0n || microsPerTao < 0n) {
    throw new RangeError("a deposit and its rate are never negative");
  }
  return (amountRao * microsPerTao) / RAO_PER_TAO;
}

/** An amount of rao as TAO, exactly ("1.5", "0.000000001"), for notes and logs. */
export function formatTao(amountRao: bigint): string {
  const sign = amountRao < 0n ? "-" : "";
  const abs = amountRao < 0n ? -amountRao : amountRao;
  const whole = abs / RAO_PER_TAO;
  const frac = (abs % RAO_PER_TAO).toString().padStart(9, "0").replace(/0+$/, "");
  return `${sign}${whole}${frac === "" ? "" : `.${frac}`}`;
}
