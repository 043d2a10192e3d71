import { readFile, stat } from "node:fs/promises";
import { appendLineSynced } from "../../common/append-line.js";
import { checkModelId } from "../ledger/ledger.js";
import { type CatalogueEntry, checkEntry, detailsOf, entryFromStored } from "./entry.js";
import type { CatalogueStore } from "./store.js";

/** The catalogue journal's name in the router's --data-dir. */
export const CATALOGUE_FILE_NAME = "catalogue.jsonl";

/**
 * The catalogue without Redis: an append-only journal of JSON lines, one
 * per change, which is also its audit trail:
 *
 *     {"at_ms":…,"op":"set","id":"…","tier":2,"details":{…}}
 *     {"at_ms":…,"op":"remove","id":"…"}
 *
 * The current catalogue is the replay of the file. `tensorclaw router
 * models` appends; a running router sees the file change (size, mtime)
 * and reads it again. A torn or corrupt line is skipped and counted.
 */
export class FileCatalogueStore implements CatalogueStore {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  async read(): Promise<{ entries: CatalogueEntry[]; skipped: number }> {
    let text: string;
    try {
      text = await readFile(this.path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { entries: [], skipped: 0 };
      throw err;
    }
    const current = new Map<string, CatalogueEntry>();
    let skipped = 0;
    for (const line of text.split("\n")) {
      if (line === "") continue;
      const change = parseLine(line);
      if (change === undefined) skipped++;
      else if (change.op === "remove") current.delete(change.id);
      else current.set(change.entry.id, change.entry);
    }
    const entries = [...current.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { entries, skipped };
  }

  async version(): Promise<string> {
    try {
      const s = await stat(this.path);
      return `${s.size}:${s.mtimeMs}:${s.ino}`;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return "absent";
      throw err;
    }
  }

  async set(entry: CatalogueEntry, nowMs: number): Promise<void> {
    const e = checkEntry(entry);
    const line = { at_ms: nowMs, op: "set", id: e.id, tier: e.tier, details: detailsOf(e) };
    await appendLineSynced(this.path, JSON.stringify(line));
  }

  async remove(id: string, nowMs: number): Promise<boolean> {
    checkModelId(id);
    if (!(await this.read()).entries.some((e) => e.id === id)) return false;
    await appendLineSynced(this.path, JSON.stringify({ at_ms: nowMs, op: "remove", id }));
    return true;
  }

  async close(): Promise<void> {}
}

type Change = { op: "set"; entry: CatalogueEntry } | { op: "remove"; id: string };

function parseLine(line: string): Change | undefined {
  let v: { op?: unknown; id?: unknown; tier?: unknown; details?: unknown };
  try {
    v = JSON.parse(line) as typeof v;
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null || typeof v.id !== "string") return undefined;
  if (v.op === "remove") return { op: "remove", id: v.id };
  if (v.op !== "set" || typeof v.tier !== "number" || typeof v.details !== "object" || v.details === null) {
    return undefined;
  }
  const entry = entryFromStored(v.id, v.tier, v.details);
  return entry === undefined ? undefined : { op: "set", entry };
}
