import type { Clock } from "../../../common/clock.js";
import type { Logger } from "../../../common/logger.js";
import type { BillingStore } from "../billing.js";
import type { DepositChain } from "./chain.js";
import { type BlockRef, decodeCursor, depositDecision, encodeCursor } from "./credit.js";
import { DEPOSIT_DEFAULTS, type DepositTimings } from "./options.js";

/** The API keys the watcher gives addresses to (`ApiKeys` fits). */
export interface KeyLister {
  /** How many keys there are; keys are never deleted, so an unchanged count means unchanged ids. */
  count(): Promise<number>;
  ids(): Promise<readonly string[]>;
}

/** Maps key ids to deposit addresses (`DepositAddresses` fits). */
export interface AddressBook {
  address(keyId: string): string;
}

/** What a {@link DepositWatcher} needs. */
export interface DepositWatcherOptions {
  readonly chain: DepositChain;
  readonly billing: BillingStore;
  readonly keys: KeyLister;
  readonly addresses: AddressBook;
  /** Credits per TAO, in micros. */
  readonly microsPerTao: bigint;
  /** Blocks a finalized block must have on top of it before its deposits count. */
  readonly confirmations: number;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly timings?: Partial<DepositTimings>;
}

/** What one pass did. */
export interface PassResult {
  /** Blocks processed (cursor moved over them). */
  readonly blocks: number;
  /** Credit entries applied now (re-delivered ones are not counted). */
  readonly credited: number;
  /** The last block processed, after the pass; undefined before any. */
  readonly cursor: BlockRef | undefined;
  /** True when the cursor reached the newest block with enough confirmations. */
  readonly caughtUp: boolean;
}

/**
 * Credits API keys for TAO sent to their deposit addresses. It follows
 * FINALIZED blocks only, and a block counts once `confirmations` more
 * blocks are finalized on top of it. For each such block, in order, every
 * `Balances.Transfer` to a known key's address becomes a credit entry with
 * id `tao:<block hash>:<event index>`; then the cursor (the last block
 * done) is stored in the BillingStore. A crash between the two re-reads the
 * block, and the entry id makes its credits a no-op: exactly once.
 *
 * With no cursor yet (first start on this chain), it starts at the newest
 * confirmed block: transfers before that are not seen (README, TAO
 * deposits). A key that was never configured (unmetered) is made metered,
 * with no daily budget, on its first deposit: someone paid for its use.
 *
 * Chain and store errors end the pass; {@link start}'s loop logs them and
 * retries with backoff, so the watcher never takes the router down.
 */
export class DepositWatcher {
  readonly #o: DepositWatcherOptions;
  readonly #t: DepositTimings;
  readonly #cursorName: string;
  #byAddress = new Map<string, string>();
  /** How many keys the map was built from; -1 before the first read. */
  #keysCounted = -1;
  #keysCheckedAtMs = Number.NEGATIVE_INFINITY;
  #abort: AbortController | undefined;
  #loop: Promise<void> | undefined;
  /**
   * Entries whose credit failed (with --redis-wait-replicas: maybe applied on
   * the master, not confirmed by its replicas). Their block is read again, and
   * the credit that then finds one applied is its first: counted and logged.
   */
  readonly #unconfirmed = new Set<string>();

  constructor(opts: DepositWatcherOptions) {
    this.#o = opts;
    this.#t = { ...DEPOSIT_DEFAULTS.timings, ...opts.timings };
    this.#cursorName = `tao-deposits:${opts.chain.genesisHash}`;
  }

  /** The BillingStore cursor this watcher keeps (one per chain). */
  get cursorName(): string {
    return this.#cursorName;
  }

  /** Processes every block that is ready, up to `maxBlocksPerPass`. Throws on chain or store errors. */
  async pass(): Promise<PassResult> {
    const o = this.#o;
    const finalized = await o.chain.finalizedNumber();
    const ready = finalized - o.confirmations;
    const stored = await o.billing.cursor(this.#cursorName);
    let cursor = stored === undefined ? undefined : decodeCursor(stored);
    if (ready < 0) return { blocks: 0, credited: 0, cursor, caughtUp: true };
    let next = cursor === undefined ? ready : cursor.number + 1;
    if (cursor === undefined) {
      o.logger.info({ block: ready }, "TAO deposits: no cursor on this chain yet, starting at this block");
    }
    const last = Math.min(ready, next + this.#t.maxBlocksPerPass - 1);
    let blocks = 0;
    let credited = 0;
    for (; next <= last && this.#abort?.signal.aborted !== true; next++) {
      const block: BlockRef = { number: next, hash: await o.chain.blockHash(next) };
      credited += await this.#processBlock(block);
      await o.billing.setCursor(this.#cursorName, encodeCursor(block));
      cursor = block;
      blocks += 1;
    }
    return { blocks, credited, cursor, caughtUp: next > ready };
  }

  async #processBlock(block: BlockRef): Promise<number> {
    const o = this.#o;
    const byAddress = await this.#addressMap();
    const transfers = await o.chain.transfers(block.hash);
    let credited = 0;
    for (const t of transfers) {
      const keyId = byAddress.get(t.to);
      if (keyId === undefined) continue;
      const d = depositDecision(t, block, keyId, o.microsPerTao, o.clock.now());
      const where = { keyId, block: block.number, blockHash: block.hash, eventIndex: t.eventIndex };
      if (d.kind === "dust") {
        o.logger.info(
          { amountRao: t.amountRao.toString(), ...where },
          "TAO deposit below one micro: not credited",
        );
        continue;
      }
      if (d.kind === "too_large") {
        o.logger.error(
          { amountRao: t.amountRao.toString(), micros: d.micros.toString(), ...where },
          "TAO deposit larger than one credit entry may carry: credit it by hand",
        );
        continue;
      }
      // Metered before credited: a crash in between is repaired when the block is read again.
      if ((await o.billing.settings(keyId)) === undefined) {
        await o.billing.configure(keyId, { metered: true, budgetDailyMicros: null }, o.clock.now());
      }
      let applied: boolean;
      try {
        applied = await o.billing.credit(d.entry);
      } catch (err) {
        this.#unconfirmed.add(d.entry.id);
        throw err;
      }
      if (this.#unconfirmed.delete(d.entry.id) || applied) {
        credited += 1;
        o.logger.info(
          { from: t.from, amountRao: t.amountRao.toString(), micros: d.entry.amountMicros, ...where },
          "TAO deposit credited",
        );
      }
    }
    return credited;
  }

  /**
   * Address → key id. When older than `keysRefreshMs` the key count is read
   * (one cheap call), and the ids only when it changed: with thousands of
   * keys the watcher must not read them all every few seconds.
   */
  async #addressMap(): Promise<ReadonlyMap<string, string>> {
    const now = this.#o.clock.now();
    if (now - this.#keysCheckedAtMs < this.#t.keysRefreshMs) return this.#byAddress;
    const count = await this.#o.keys.count();
    if (count !== this.#keysCounted) {
      const ids = await this.#o.keys.ids();
      const m = new Map<string, string>();
      for (const id of ids) {
        try {
          m.set(this.#o.addresses.address(id), id);
        } catch (err) {
          this.#o.logger.warn({ keyId: id, err }, "TAO deposits: no deposit address for this key id");
        }
      }
      this.#byAddress = m;
      // The ids read, not the count before: a key added in between shows as a change next time.
      this.#keysCounted = ids.length;
    }
    this.#keysCheckedAtMs = now;
    return this.#byAddress;
  }

  /**
   * Runs passes until {@link stop}: at once again while behind, every
   * `pollMs` once caught up, and after a failure with a backoff doubling
   * from `retryMinMs` to `retryMaxMs` (each failure logged).
   */
  start(): void {
    if (this.#loop !== undefined) return;
    const abort = new AbortController();
    this.#abort = abort;
    this.#loop = (async () => {
      let failures = 0;
      while (!abort.signal.aborted) {
        let waitMs: number;
        try {
          const r = await this.pass();
          if (failures > 0) this.#o.logger.info("TAO deposits: chain and store reachable again");
          failures = 0;
          waitMs = r.caughtUp ? this.#t.pollMs : 0;
        } catch (err) {
          failures += 1;
          waitMs = Math.min(this.#t.retryMaxMs, this.#t.retryMinMs * 2 ** Math.min(failures - 1, 30));
          this.#o.logger.warn(
            { err: err instanceof Error ? err.message : String(err), failures, retryInMs: waitMs },
            "TAO deposits: pass failed, retrying",
          );
        }
        if (waitMs > 0) await this.#o.clock.sleep(waitMs, abort.signal);
        else await new Promise<void>((resolve) => setImmediate(resolve));
      }
    })();
  }

  /** Stops the loop after the block in progress; resolves once it has. */
  async stop(): Promise<void> {
    this.#abort?.abort();
    await this.#loop;
    this.#loop = undefined;
  }
}
