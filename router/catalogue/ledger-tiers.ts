import type { UsageLedger } from "../ledger/ledger.js";
import type { ModelCatalogue } from "./catalogue.js";

/**
 * Makes a ledger's tier table equal to the catalogue's tiers: sets what
 * differs, removes what the catalogue no longer has. The Redis ledger
 * shares its tier keys with the catalogue and never needs this; the
 * embedded ledger keeps its own table and gets it on every change.
 * Resolves to the number of changes made.
 */
export async function syncLedgerTiers(
  ledger: UsageLedger,
  catalogue: ModelCatalogue,
  nowMs: number,
): Promise<number> {
  const have = await ledger.tiers();
  const want = catalogue.tierMap();
  let changes = 0;
  for (const [model, tier] of want) {
    if (have.get(model) === tier) continue;
    await ledger.setTier(model, tier, nowMs);
    changes++;
  }
  for (const model of have.keys()) {
    if (want.has(model)) continue;
    await ledger.removeTier(model, nowMs);
    changes++;
  }
  return changes;
}
