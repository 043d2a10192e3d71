import { readFileSync } from "node:fs";
import type { ApiPromise } from "@polkadot/api";
import { blake2AsHex } from "@polkadot/util-crypto";
import {
  encodeEvents,
  SubtensorTestProvider,
  SYSTEM_EVENTS_KEY,
  TEST_DISPATCH_INFO,
  type TestEvent,
} from "./validator-chain-provider.js";

/** One `Balances.Transfer` to put in a block. */
export interface TestTransfer {
  readonly from: string;
  readonly to: string;
  readonly amountRao: bigint;
}

/** Block hashes by number and back, shared by every provider (the scheme is fixed). */
const HASHES = new Map<number, string>();
const NUMBERS = new Map<string, number>();

/**
 * The in-process Subtensor of the validator's chain tests, grown a chain to
 * follow: blocks 0..`finalized` exist, each with a hash of its own, a header
 * and its `System.Events` (set by the test, empty otherwise), and the node
 * reports `finalized` as its finalized (and best) head. Tests move
 * `finalized` forward to make blocks final.
 */
export class DepositChainProvider extends SubtensorTestProvider {
  /** Number of the finalized head; also the best block. */
  #finalized: number;
  readonly #events = new Map<number, string>();
  /** Per block number, how often its events were read (re-delivery checks). */
  readonly eventReads = new Map<number, number>();

  constructor(metadata: Uint8Array, finalized: number) {
    super(metadata, finalized);
    this.#finalized = finalized;
  }

  /** Reads the fixture (see `subtensorMetadataPath`). */
  static override fromFixture(path: string, finalized = 1000): DepositChainProvider {
    return new DepositChainProvider(readFileSync(path), finalized);
  }

  get finalized(): number {
    return this.#finalized;
  }

  set finalized(n: number) {
    this.#finalized = n;
    this.bestNumber = n;
  }

  /** The hash of block `n` on this chain. */
  static hashOf(n: number): string {
    let h = HASHES.get(n);
    if (h === undefined) {
      h = blake2AsHex(`tensorclaw-deposit-block-${n}`, 256);
      HASHES.set(n, h);
      NUMBERS.set(h, n);
    }
    return h;
  }

  /** Sets the events (`Vec<EventRecord>` hex) of block `n`. */
  setEvents(n: number, eventsHex: string): void {
    this.#events.set(n, eventsHex);
  }

  #numberOf(hash: unknown): number | undefined {
    if (typeof hash !== "string") return this.#finalized;
    const n = NUMBERS.get(hash);
    // Only blocks the node has: up to its head.
    return n !== undefined && n <= this.#finalized ? n : undefined;
  }

  #header(n: number): Record<string, unknown> {
    const zero = `0x${"00".repeat(32)}`;
    return {
      parentHash: n === 0 ? zero : DepositChainProvider.hashOf(n - 1),
      number: `0x${n.toString(16)}`,
      stateRoot: zero,
      extrinsicsRoot: zero,
      digest: { logs: [] },
    };
  }

  override async send<T = unknown>(method: string, params: unknown[]): Promise<T> {
    const answer = (v: unknown) => {
      this.calls.push(method);
      if (this.failing) throw new Error("DepositChainProvider: node unavailable");
      return v as T;
    };
    switch (method) {
      case "chain_getFinalizedHead":
        return answer(DepositChainProvider.hashOf(this.#finalized));
      case "chain_getBlockHash": {
        const n = params[0] === undefined || params[0] === null ? this.#finalized : Number(params[0]);
        // A node answers null for a block it does not have yet.
        return answer(n > this.#finalized ? null : DepositChainProvider.hashOf(n));
      }
      case "chain_getHeader": {
        const n = this.#numberOf(params[0]);
        return answer(n === undefined ? null : this.#header(n));
      }
      case "state_getStorage": {
        if (String(params[0]).toLowerCase() !== SYSTEM_EVENTS_KEY || params[1] === undefined) break;
        const n = this.#numberOf(params[1]);
        if (n !== undefined) this.eventReads.set(n, (this.eventReads.get(n) ?? 0) + 1);
        return answer(n === undefined ? null : (this.#events.get(n) ?? "0x00"));
      }
    }
    return super.send<T>(method, params);
  }
}

/**
 * The events of a block holding `transfers`, one extrinsic each: a fee
 * `Balances.Withdraw`, the `Balances.Transfer` and `System.ExtrinsicSuccess`,
 * so a transfer's event index is 3·i + 1, never simply i. Returns the hex
 * and each transfer's event index.
 */
export function transferBlockEvents(
  api: ApiPromise,
  transfers: readonly TestTransfer[],
): { hex: string; eventIndexes: number[] } {
  const events: TestEvent[] = [];
  const eventIndexes: number[] = [];
  for (const t of transfers) {
    events.push({ pallet: "Balances", event: "Withdraw", args: [t.from, 125_000n] });
    eventIndexes.push(events.length);
    events.push({ pallet: "Balances", event: "Transfer", args: [t.from, t.to, t.amountRao] });
    events.push({ pallet: "System", event: "ExtrinsicSuccess", args: [TEST_DISPATCH_INFO] });
  }
  return { hex: encodeEvents(api, 0, events), eventIndexes };
}
