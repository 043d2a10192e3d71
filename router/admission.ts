import { type Clock, systemClock, type Timer } from "../common/clock.js";
import type { Logger } from "../common/logger.js";

/**
 * Who the router lets in: miners that may open a tunnel (the tunnel hub's
 * `admit` hook) and validators that may call Probe / UsageReport /
 * MinerDirectory (validator-auth's `authorize` hook).
 */
export interface AdmissionPolicy {
  admitMiner(hotkey: string): boolean;
  authorizeValidator(hotkey: string): boolean;
}

/**
 * Without a chain: the allow-lists from config. An empty miner list admits
 * any hotkey that signed its hello; an empty validator list admits no
 * validator (the services expose every miner's traffic, so they fail closed).
 */
export class AllowListAdmission implements AdmissionPolicy {
  readonly #miners: ReadonlySet<string>;
  readonly #validators: ReadonlySet<string>;

  constructor(miners: readonly string[], validators: readonly string[]) {
    this.#miners = new Set(miners);
    this.#validators = new Set(validators);
  }

  admitMiner(hotkey: string): boolean {
    return this.#miners.size === 0 || this.#miners.has(hotkey);
  }

  authorizeValidator(hotkey: string): boolean {
    return this.#validators.has(hotkey);
  }
}

/** What admission reads of the chain (a validator/chain-polkadot PolkadotChain fits). */
export interface SubnetReader {
  readMetagraph(netuid: number): Promise<{
    readonly block: number;
    readonly neurons: readonly { readonly hotkey: string; readonly validatorPermit: boolean }[];
  }>;
}

/** An immutable view of the subnet's membership. */
export interface Membership {
  readonly block: number;
  readonly registered: ReadonlySet<string>;
  readonly permitted: ReadonlySet<string>;
  /** Router time when it was read (Unix ms). */
  readonly readAtMs: number;
}

/** Options of {@link ChainAdmission}. */
export interface ChainAdmissionOptions {
  readonly reader: SubnetReader;
  readonly netuid: number;
  /** How often the metagraph is read again. */
  readonly refreshMs: number;
  /** Read times and the refresh timer. */
  readonly clock: Clock;
  readonly logger: Logger;
  /** Called after each successful read (the router re-checks open tunnels). */
  readonly onRefreshed?: () => void;
}

/**
 * With a chain: only hotkeys registered on the subnet open tunnels, only
 * hotkeys with a validator permit call the validator services. The metagraph
 * is refreshed periodically; a failed refresh keeps the last good snapshot
 * (membership changes slowly, and a chain hiccup must not lock everyone
 * out). Before the first successful read nobody is admitted: fail closed.
 */
export class ChainAdmission implements AdmissionPolicy {
  readonly #o: ChainAdmissionOptions;
  #membership: Membership | undefined;
  #timer: Timer | undefined;
  #refreshing: Promise<boolean> | undefined;

  constructor(opts: ChainAdmissionOptions) {
    this.#o = opts;
  }

  /** The current snapshot (undefined before the first successful read). */
  get membership(): Membership | undefined {
    return this.#membership;
  }

  /**
   * Reads the metagraph now. Resolves true when the snapshot was replaced,
   * false when the read failed (the old snapshot stays). Concurrent calls
   * share one read.
   */
  refresh(): Promise<boolean> {
    this.#refreshing ??= this.#read().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #read(): Promise<boolean> {
    try {
      const mg = await this.#o.reader.readMetagraph(this.#o.netuid);
      const registered = new Set<string>();
      const permitted = new Set<string>();
      for (const n of mg.neurons) {
        registered.add(n.hotkey);
        if (n.validatorPermit) permitted.add(n.hotkey);
      }
      this.#membership = Object.freeze({
        block: mg.block,
        registered,
        permitted,
        readAtMs: this.#o.clock.now(),
      });
      this.#o.logger.debug(
        { netuid: this.#o.netuid, block: mg.block, registered: registered.size, permitted: permitted.size },
        "metagraph refreshed",
      );
      this.#o.onRefreshed?.();
      return true;
    } catch (err) {
      this.#o.logger.warn(
        { netuid: this.#o.netuid, err: err instanceof Error ? err.message : String(err) },
        this.#membership === undefined
          ? "cannot read the metagraph: admitting nobody until it can be read"
          : "cannot refresh the metagraph: keeping the last snapshot",
      );
      return false;
    }
  }

  /** First read, then a refresh every `refreshMs` until {@link stop}. */
  async start(): Promise<boolean> {
    const ok = await this.refresh();
    // The timer must not keep a stopping router alive.
    this.#timer = this.#o.clock.setInterval(() => void this.refresh(), this.#o.refreshMs, { unref: true });
    return ok;
  }

  stop(): void {
    this.#o.clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }

  admitMiner(hotkey: string): boolean {
    return this.#membership?.registered.has(hotkey) ?? false;
  }

  authorizeValidator(hotkey: string): boolean {
    return this.#membership?.permitted.has(hotkey) ?? false;
  }
}

/** How the router decides admission (from RouterConfig). */
export interface AdmissionSettings {
  /** Subtensor endpoint; absent → allow-lists. */
  readonly chain: string | undefined;
  readonly netuid: number;
  readonly minersAllow: readonly string[];
  readonly validators: readonly string[];
  /** How often the metagraph is read again (default 5 minutes). */
  readonly refreshMs?: number;
  readonly logger: Logger;
  /** Called after each successful metagraph read (chain admission only). */
  readonly onRefreshed?: () => void;
}

/** An admission policy, started, and how to stop it. */
export interface StartedAdmission {
  readonly policy: AdmissionPolicy;
  stop(): Promise<void>;
}

/**
 * Builds the router's admission: allow-lists without a chain; with one, a
 * read-only Subtensor client (loaded on demand, @polkadot/api is heavy) and
 * a ChainAdmission refreshed periodically. A chain that cannot be reached at
 * start-up is an `unavailable` error naming the endpoint.
 */
export async function startAdmission(s: AdmissionSettings): Promise<StartedAdmission> {
  if (s.chain === undefined) {
    return { policy: new AllowListAdmission(s.minersAllow, s.validators), stop: async () => {} };
  }
  const { connectPolkadotChain } = await import("../common/chain/polkadot.js");
  const chain = await connectPolkadotChain({ endpoint: s.chain, logger: s.logger });
  const admission = new ChainAdmission({
    reader: chain,
    netuid: s.netuid,
    refreshMs: s.refreshMs ?? 300_000,
    clock: systemClock,
    logger: s.logger,
    ...(s.onRefreshed === undefined ? {} : { onRefreshed: s.onRefreshed }),
  });
  await admission.start();
  return {
    policy: admission,
    stop: async () => {
      admission.stop();
      await chain.close();
    },
  };
}
