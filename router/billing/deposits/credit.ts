import type { CreditEntry } from "../billing.js";
import { formatTao, MAX_CREDIT_MICROS, taoToMicros } from "../money.js";
import type { Transfer } from "./chain.js";

/** A block the watcher has fully processed, or is processing. */
export interface BlockRef {
  readonly number: number;
  readonly hash: string;
}

/** The ledger entry id of a deposit: one per (block hash, event index), so a block read twice credits once. */
export function depositEntryId(blockHash: string, eventIndex: number): string {
  return `tao:${blockHash}:${eventIndex}`;
}

/** What to do with one transfer to a key's deposit address. */
export type DepositDecision =
  | { readonly kind: "credit"; readonly entry: CreditEntry }
  /** Worth less than one micro at the rate: nothing to credit. */
  | { readonly kind: "dust"; readonly amountRao: bigint }
  /** More than one entry may carry (MAX_CREDIT_MICROS): left to the operator. */
  | { readonly kind: "too_large"; readonly micros: bigint };

/**
 * The credit entry for a transfer of `amountRao` to `keyId`'s deposit
 * address at `microsPerTao`, rounded down to the micro. The note records the
 * amount in TAO, the sender and the block, so the entry alone explains itself.
 */
export function depositDecision(
  t: Transfer,
  block: BlockRef,
  keyId: string,
  microsPerTao: bigint,
  atMs: number,
): DepositDecision {
  const micros = taoToMicros(t.amountRao, microsPerTao);
  if (micros === 0n) return { kind: "dust", amountRao: t.amountRao };
  if (micros > BigInt(MAX_CREDIT_MICROS)) return { kind: "too_large", micros };
  return {
    kind: "credit",
    entry: {
      id: depositEntryId(block.hash, t.eventIndex),
      keyId,
      amountMicros: Number(micros),
      note: `TAO deposit: ${formatTao(t.amountRao)} TAO from ${t.from} in block #${block.number}`,
      source: "deposit",
      atMs,
    },
  };
}

/** The watcher's cursor as stored (`BillingStore.setCursor`): the last block fully processed. */
export function encodeCursor(block: BlockRef): string {
  return JSON.stringify({ block: block.number, hash: block.hash });
}

/** Reads a stored cursor; throws on anything but what {@link encodeCursor} writes. */
export function decodeCursor(text: string): BlockRef {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const o = v as { block?: unknown; hash?: unknown } | undefined;
  if (
    typeof o !== "object" ||
    o === null ||
    !Number.isSafeInteger(o.block) ||
    (o.block as number) < 0 ||
    typeof o.hash !== "string"
  ) {
    throw new Error(`malformed deposit cursor ${JSON.stringify(text)}`);
  }
  return { number: o.block as number, hash: o.hash };
}
