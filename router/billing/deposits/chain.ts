import type { ApiPromise } from "@polkadot/api";
import type { Codec } from "@polkadot/types/types";
import { encodeAddress } from "@polkadot/util-crypto";
import { SS58_PREFIX } from "../../../common/identity.js";

/** One `Balances.Transfer` event of a block. */
export interface Transfer {
  /** The event's position in the block's `System.Events` (what explorers show as `<block>-<index>`). */
  readonly eventIndex: number;
  /** SS58 (prefix 42). */
  readonly from: string;
  /** SS58 (prefix 42). */
  readonly to: string;
  /** In rao (1 TAO = 1e9 rao). */
  readonly amountRao: bigint;
}

/** What the deposit watcher reads of the chain. */
export interface DepositChain {
  /** The chain's genesis hash: it names the watcher's cursor, so another chain starts its own. */
  readonly genesisHash: string;
  /** Number of the latest finalized block. */
  finalizedNumber(): Promise<number>;
  /** Hash of the block with this number on the canonical chain (final once finalized). */
  blockHash(blockNumber: number): Promise<string>;
  /** The `Balances.Transfer` events of a block, in event order. */
  transfers(blockHash: string): Promise<readonly Transfer[]>;
}

interface EventLike {
  readonly data: readonly Codec[];
}

interface EventRecordLike {
  readonly event: EventLike;
}

interface EventMatcher {
  is(event: unknown): boolean;
}

/**
 * Subtensor through `@polkadot/api`. Events are read with the runtime of
 * their own block (`api.at`), so a runtime upgrade between the cursor and
 * the head does not mis-decode older blocks. Subtensor's `Balances.Transfer`
 * is `{ from: AccountId32, to: AccountId32, amount: u64 }`; it is emitted only
 * by transfers that succeeded (a failed call's events are rolled back), and
 * by every way of moving TAO (`transfer_keep_alive`, `transfer_all`, batches,
 * proxies, multisigs), which is why the watcher reads events, not calls.
 */
export class PolkadotDepositChain implements DepositChain {
  readonly #api: ApiPromise;

  constructor(api: ApiPromise) {
    this.#api = api;
  }

  get genesisHash(): string {
    return this.#api.genesisHash.toHex();
  }

  async finalizedNumber(): Promise<number> {
    const hash = await this.#api.rpc.chain.getFinalizedHead();
    const header = await this.#api.rpc.chain.getHeader(hash);
    return header.number.toNumber();
  }

  async blockHash(blockNumber: number): Promise<string> {
    const hash = await this.#api.rpc.chain.getBlockHash(blockNumber);
    if (hash.isEmpty) throw new Error(`the node knows no block #${blockNumber}`);
    return hash.toHex();
  }

  async transfers(blockHash: string): Promise<readonly Transfer[]> {
    const at = await this.#api.at(blockHash);
    const transfer = (at.events as unknown as Record<string, Record<string, EventMatcher | undefined>>)
      .balances?.Transfer;
    if (transfer === undefined) throw new Error("the runtime has no Balances.Transfer event");
    const system = at.query.system as unknown as { events(): Promise<Codec> } | undefined;
    if (system === undefined) throw new Error("the runtime has no System.Events storage");
    const records = (await system.events()) as unknown as readonly EventRecordLike[];
    const out: Transfer[] = [];
    records.forEach((r, eventIndex) => {
      if (!transfer.is(r.event)) return;
      const [from, to, amount] = r.event.data;
      if (from === undefined || to === undefined || amount === undefined) return;
      out.push({
        eventIndex,
        from: encodeAddress(from.toU8a(), SS58_PREFIX),
        to: encodeAddress(to.toU8a(), SS58_PREFIX),
        amountRao: BigInt(amount.toString()),
      });
    });
    return out;
  }
}
