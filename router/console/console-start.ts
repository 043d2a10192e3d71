import type { Logger } from "../../common/logger.js";
import type { ApiKeys } from "../api/keys.js";
import type { RateLimiter } from "../api/rate-limiter.js";
import type { BillingStore } from "../billing/billing.js";
import { DepositAddresses } from "../billing/deposits/address.js";
import type { ModelCatalogue } from "../catalogue/catalogue.js";
import type { UsageLedger } from "../ledger/ledger.js";
import type { RoutingBook } from "../routing/book.js";
import type { VerdictBook } from "../services/verdicts.js";
import type { TunnelDispatcher } from "../tunnel/types.js";
import { buildConsole, type ConsoleBundle } from "./console-assets.js";
import { ConsoleData } from "./console-data.js";
import { type ConsoleRoutes, consoleRoutes } from "./console-routes.js";

/** The parts of a running router the console reads. */
export interface ConsoleParts {
  readonly hub: TunnelDispatcher;
  readonly routing: RoutingBook;
  readonly verdicts: VerdictBook;
  readonly ledger: UsageLedger;
  readonly catalogue: () => ModelCatalogue;
  readonly logger: Logger;
  readonly clock?: () => number;
  /** The Business API's keys (undefined with `--no-auth`), rate limiter and billing store. */
  readonly keys: ApiKeys | undefined;
  readonly limiter: RateLimiter;
  readonly billing: BillingStore | undefined;
  /** The treasury mnemonic when the router credits TAO deposits: the Account page shows each key its address. */
  readonly depositMnemonic?: string | undefined;
}

/** The console of a starting router. */
export interface StartedConsole {
  /** The HTTP routes (ApiDeps.console). */
  readonly routes: ConsoleRoutes;
  /**
   * Builds the bundle now, in the background. The router calls it once it
   * listens, so the build never delays /healthz; a page asked for earlier
   * starts the build itself and waits for it.
   */
  build(): void;
}

/**
 * The console's routes over the router's parts. A failed build is logged
 * once and answered 500 on the page; the API is not affected.
 */
export function startConsole(p: ConsoleParts): StartedConsole {
  let bundle: Promise<ConsoleBundle> | undefined;
  const getBundle = (): Promise<ConsoleBundle> => {
    if (bundle === undefined) {
      const started = performance.now();
      bundle = buildConsole();
      bundle.then(
        (b) =>
          p.logger.debug(
            { ms: Math.round(performance.now() - started), transferBytes: b.transferBytes },
            "web console built",
          ),
        (err: unknown) => p.logger.error({ err }, "cannot build the web console; / answers 500"),
      );
    }
    return bundle;
  };
  const data = new ConsoleData({
    sessions: () => p.hub.sessions(),
    catalogue: p.catalogue,
    routing: () => p.routing.view(),
    auditFailed: () => p.verdicts.pairs(),
    ledger: p.ledger,
    clock: p.clock ?? Date.now,
  });
  const mnemonic = p.depositMnemonic;
  let addresses: Promise<DepositAddresses> | undefined;
  const depositAddress =
    mnemonic === undefined
      ? undefined
      : async (keyId: string) => {
          addresses ??= DepositAddresses.fromMnemonic(mnemonic);
          return (await addresses).address(keyId);
        };
  const routes = consoleRoutes(getBundle, data, {
    keys: p.keys,
    limiter: p.limiter,
    billing: p.billing,
    clock: p.clock ?? Date.now,
    ...(depositAddress === undefined ? {} : { depositAddress }),
  });
  return { routes, build: () => void getBundle().catch(() => {}) };
}
