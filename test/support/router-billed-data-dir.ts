import { silentLogger } from "../../common/logger.js";
import { ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { MICROS_PER_USD } from "../../router/billing/money.js";
import { checkEntry } from "../../router/catalogue/entry.js";
import { catalogueFileIn } from "../../router/catalogue/open-store.js";
import { FileCatalogueStore } from "../../router/catalogue/store-file.js";
import { ROUTER_DEFAULTS } from "../../router/config.js";
import { type RunningRouter, routerPaths, startRouter } from "../../router/router.js";

/** Prompt and completion prices (USD per million tokens) of the model billedRouter prices. */
export const BILLED_PRICES = { pricePromptPerM: 5, priceCompletionPerM: 20 } as const;

/** What billedRouter set up and started. */
export interface BilledRouter {
  readonly router: RunningRouter;
  readonly paths: ReturnType<typeof routerPaths>;
  /** When the keys and credit were written (Unix ms). */
  readonly now: number;
  /** A metered key credited USD 1. */
  readonly paying: Awaited<ReturnType<ApiKeys["create"]>>;
  /** A metered key with no credit. */
  readonly broke: Awaited<ReturnType<ApiKeys["create"]>>;
}

/**
 * The router program as `tensorclaw router` runs without Redis, over a data
 * dir prepared as an operator would from other processes: `model` in the
 * catalogue at BILLED_PRICES, a paying and a broke metered key (written as
 * `tensorclaw keys` does, offline), then the router started on free ports.
 */
export async function billedRouter(dir: string, model: string): Promise<BilledRouter> {
  const paths = routerPaths(dir);
  const now = Date.now();
  const entry = checkEntry({
    id: model,
    tier: 1,
    tokenizer: "o200k_base",
    contextLength: 0,
    ...BILLED_PRICES,
    aliases: [],
  });
  await new FileCatalogueStore(catalogueFileIn(dir)).set(entry, now);
  const keys = new ApiKeys(new FileApiKeyStore(paths.keys));
  const none = { requestsPerMinute: 0, tokensPerMinute: 0 };
  const paying = await keys.create("paying", none, now);
  const broke = await keys.create("broke", none, now);
  for (const k of [paying, broke]) {
    await EmbeddedBilling.configureOffline(
      paths.billing,
      k.record.id,
      { metered: true, budgetDailyMicros: null },
      now,
    );
  }
  await EmbeddedBilling.creditOffline(paths.billing, {
    id: "test:paying",
    keyId: paying.record.id,
    amountMicros: MICROS_PER_USD,
    note: "test",
    source: "operator",
    atMs: now,
  });
  const router = await startRouter(
    { ...ROUTER_DEFAULTS, httpPort: 0, grpcPort: 0, dataDir: dir },
    silentLogger(),
  );
  return { router, paths, now, paying, broke };
}
