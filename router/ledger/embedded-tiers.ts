/**
 * The embedded ledger's journal file seen from outside the ledger: its
 * default path, and the tier lines an older router kept there, read without
 * opening the ledger (the catalogue brings them over once; see
 * router/catalogue/open-store.ts).
 */
import { readFile } from "node:fs/promises";

/** Default journal file of the embedded ledger. */
export const DEFAULT_EMBEDDED_LEDGER_FILE = ".tensorclaw/ledger.jsonl";

/** The tier map recorded in a journal file (empty when the file does not exist). */
export async function readTierLines(path: string): Promise<Map<string, number>> {
  const tiers = new Map<string, number>();
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return tiers;
    throw err;
  }
  for (const line of text.split("\n")) {
    if (!line.startsWith('{"t":')) continue;
    try {
      const [model, mult] = (JSON.parse(line) as { t: unknown[] }).t;
      if (typeof model !== "string") continue;
      if (mult === null) tiers.delete(model);
      else if (typeof mult === "number" && Number.isFinite(mult) && mult >= 0) tiers.set(model, mult);
    } catch {
      // A torn or corrupt line: the ledger skips it too.
    }
  }
  return new Map([...tiers].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
