import type { ApiPromise } from "@polkadot/api";
import { type Clock, systemClock } from "../../../common/clock.js";
import { TensorClawError } from "../../../common/errors.js";
import type { Logger } from "../../../common/logger.js";
import type { BillingStore } from "../billing.js";
import { usdToMicros } from "../money.js";
import { DepositAddresses } from "./address.js";
import { PolkadotDepositChain } from "./chain.js";
import { DEPOSIT_DEFAULTS, type DepositTimings } from "./options.js";
import { DepositWatcher, type KeyLister } from "./watcher.js";

/** What the router hands {@link startDepositWatcher}. Give `chainUrl` or `api`. */
export interface StartDepositWatcherOptions {
  /** Subtensor endpoint (ws/wss): the watcher connects, and reconnects, by itself. */
  readonly chainUrl?: string;
  /** A connected API instead of `chainUrl` (tests); left connected by `stop`. */
  readonly api?: ApiPromise;
  readonly billing: BillingStore;
  readonly keys: KeyLister;
  /** USD credits per TAO deposited (`--credits-per-tao`). */
  readonly creditsPerTao: number;
  /** `--deposit-confirmations` (default {@link DEPOSIT_DEFAULTS}). */
  readonly confirmations?: number;
  /** The treasury mnemonic (TENSORCLAW_TREASURY_MNEMONIC); kept only as the derived root. */
  readonly mnemonic: string;
  readonly logger: Logger;
  readonly clock?: Clock;
  readonly timings?: Partial<DepositTimings>;
}

/** A started watcher. */
export interface RunningDepositWatcher {
  /** Stops following the chain (after the block in progress) and closes its own connection. */
  stop(): Promise<void>;
}

/** Credits per TAO (USD, as configured) in micros; a `config_invalid` error unless positive. */
export function microsPerTao(creditsPerTao: number): bigint {
  const micros = Number.isFinite(creditsPerTao) ? usdToMicros(creditsPerTao) : 0;
  if (!(micros > 0)) {
    throw new TensorClawError(
      "config_invalid",
      `invalid setting --credits-per-tao: must be at least 0.000001 USD, got ${creditsPerTao}`,
    );
  }
  return BigInt(micros);
}

/**
 * Starts crediting TAO deposits. Settings are checked now (a bad mnemonic or
 * rate rejects, naming the setting and never the mnemonic); the chain is not:
 * with `chainUrl`, connecting happens in the background and is retried with
 * backoff until it works or `stop` is called, so an unreachable node never
 * keeps the router from serving.
 */
export async function startDepositWatcher(o: StartDepositWatcherOptions): Promise<RunningDepositWatcher> {
  if ((o.chainUrl === undefined) === (o.api === undefined)) {
    throw new TensorClawError("config_invalid", "the deposit watcher needs exactly one of chainUrl and api");
  }
  const rate = microsPerTao(o.creditsPerTao);
  const addresses = await DepositAddresses.fromMnemonic(o.mnemonic);
  const clock = o.clock ?? systemClock;
  const timings = { ...DEPOSIT_DEFAULTS.timings, ...o.timings };
  const watcherFor = (api: ApiPromise) =>
    new DepositWatcher({
      chain: new PolkadotDepositChain(api),
      billing: o.billing,
      keys: o.keys,
      addresses,
      microsPerTao: rate,
      confirmations: o.confirmations ?? DEPOSIT_DEFAULTS.confirmations,
      clock,
      logger: o.logger,
      timings,
    });
  o.logger.info(
    { treasury: addresses.treasuryAddress, creditsPerTao: o.creditsPerTao },
    "TAO deposits: crediting transfers to per-key deposit addresses",
  );

  if (o.api !== undefined) {
    const watcher = watcherFor(o.api);
    watcher.start();
    return { stop: () => watcher.stop() };
  }

  const endpoint = o.chainUrl as string;
  const abort = new AbortController();
  let watcher: DepositWatcher | undefined;
  let close: (() => Promise<void>) | undefined;
  const connecting = (async () => {
    // Loaded here: a router without deposits never loads @polkadot/api.
    const { connectPolkadotChain } = await import("../../../common/chain/polkadot.js");
    for (let failures = 0; !abort.signal.aborted; ) {
      try {
        const chain = await connectPolkadotChain({ endpoint, logger: o.logger });
        if (abort.signal.aborted) {
          await chain.close();
          return;
        }
        close = () => chain.close();
        watcher = watcherFor(chain.api);
        watcher.start();
        return;
      } catch (err) {
        failures += 1;
        const waitMs = Math.min(timings.retryMaxMs, timings.retryMinMs * 2 ** Math.min(failures - 1, 30));
        o.logger.warn(
          { err: err instanceof Error ? err.message : String(err), retryInMs: waitMs },
          "TAO deposits: cannot reach the chain, retrying",
        );
        await clock.sleep(waitMs, abort.signal);
      }
    }
  })();
  return {
    stop: async () => {
      abort.abort();
      // A connection still being made is not waited for (it can take the whole connect timeout
      // when the node is unreachable): it closes itself once it sees the abort.
      void connecting;
      await watcher?.stop();
      await close?.();
    },
  };
}

/** The router settings deposits read (RouterConfig fits). */
export interface RouterDepositSettings {
  readonly chain: string | undefined;
  readonly creditsPerTao: number | undefined;
  readonly depositConfirmations: number;
  readonly treasuryMnemonic: string | undefined;
}

/**
 * The router's deposit watcher, when its settings ask for one: with
 * `--chain`, `--credits-per-tao` and the treasury mnemonic (config.ts has
 * already refused `--credits-per-tao` without the other two). Undefined
 * when deposits are off, or when the router serves without API keys
 * (`keys` undefined: there is nothing to credit), which is logged.
 */
export async function startRouterDeposits(
  cfg: RouterDepositSettings,
  deps: { readonly billing: BillingStore; readonly keys: KeyLister | undefined; readonly logger: Logger },
): Promise<RunningDepositWatcher | undefined> {
  if (cfg.creditsPerTao === undefined) {
    if (cfg.treasuryMnemonic !== undefined) {
      deps.logger.info("TAO deposits off: the treasury mnemonic is set but --credits-per-tao is not");
    }
    return undefined;
  }
  // config.ts refuses --credits-per-tao without these two; a caller that built its own settings gets nothing.
  if (cfg.chain === undefined || cfg.treasuryMnemonic === undefined) return undefined;
  if (deps.keys === undefined) {
    deps.logger.warn("TAO deposits off: the router serves without API keys (--no-auth)");
    return undefined;
  }
  return startDepositWatcher({
    chainUrl: cfg.chain,
    billing: deps.billing,
    keys: deps.keys,
    creditsPerTao: cfg.creditsPerTao,
    confirmations: cfg.depositConfirmations,
    mnemonic: cfg.treasuryMnemonic,
    logger: deps.logger,
  });
}
