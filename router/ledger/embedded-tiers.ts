/**
 * The embedded ledger's journal file as `tensorclaw router tiers` sees it when
 * there is no Redis: its default path, and its tier lines read and appended
 * without opening the ledger. The command never compacts, so it cannot trim
 * data under another retention setting; a running router applies appended
 * lines when it next opens the file (restart).
 */
import { mkdir, open, readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { checkModelId, checkMultiplier } from "./ledger.js";

/** Default journal file of the embedded ledger. */
export const DEFAULT_EMBEDDED_LEDGER_FILE = ".tensorclaw/ledger.jsonl";

/**
 * Appends one tier change to a journal file (creating it), fsynced. The
 * multiplier `null` removes the entry.
 */
export async function appendTierLine(
  path: string,
  model: string,
  multiplier: number | null,
  nowMs: number,
): Promise<void> {
  checkModelId(model);
  if (multiplier !== null) checkMultiplier(multiplier);
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, "a");
  try {
    // A torn last line from a crashed writer must not swallow this one.
    const size = (await fh.stat()).size;
    let lead = "";
    if (size > 0) {
      const last = Buffer.alloc(1);
      const probe = await open(path, "r");
      try {
        await probe.read(last, 0, 1, size - 1);
      } finally {
        await probe.close();
      }
      if (last[0] !== 10) lead = "\n";
    }
    await fh.write(`${lead}${JSON.stringify({ t: [model, multiplier, nowMs] })}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

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
