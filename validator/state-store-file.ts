import { randomBytes } from "node:crypto";
import { mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { TensorClawError } from "../common/errors.js";
import { AUDIT_HISTORY_SIZE, type AuditRecord, parseAuditRecord } from "./audit/verdicts.js";
import { PROBE_HISTORY_SIZE, type ProbeRecord } from "./scoring.js";
import {
  type ProbeEntry,
  parsePendingCommit,
  parseProbeRecord,
  type ValidatorStateStore,
} from "./state-store.js";
import type { PendingCommit } from "./weights-plan.js";

/**
 * On-disk shape (versioned so a future change can migrate). `audits` came
 * later within version 1: a file without it has no audits yet.
 */
interface StateFile {
  readonly version: 1;
  readonly probes: Record<string, ProbeRecord[]>;
  /** Every kept audit, each (hotkey, model)'s oldest first. */
  readonly audits?: AuditRecord[];
  readonly pendingCommits: PendingCommit[];
}

/** The in-memory key of one (hotkey, model) audit history. */
function pairKey(hotkey: string, model: string): string {
  return JSON.stringify([hotkey, model]);
}

/**
 * State in one local JSON file, rewritten atomically on every change: write
 * a temporary file, fsync it, rename it over the old one, fsync the folder.
 * A crash leaves either the old or the new state, never a torn file. Writes
 * are serialised, so concurrent updates cannot lose each other.
 */
export class FileStateStore implements ValidatorStateStore {
  readonly #path: string;
  #probes = new Map<string, ProbeRecord[]>();
  /** Audit histories by {@link pairKey}, oldest first. */
  #audits = new Map<string, AuditRecord[]>();
  #commits: PendingCommit[] = [];
  #queue: Promise<void> = Promise.resolve();

  private constructor(path: string) {
    this.#path = path;
  }

  /**
   * Opens (or starts) the state file. A missing file is an empty state; a
   * file that cannot be parsed is a startup error naming the file, because
   * silently starting over would orphan pending commits.
   */
  static async open(path: string): Promise<FileStateStore> {
    const store = new FileStateStore(path);
    let text: string | undefined;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        throw new TensorClawError("config_invalid", `state file ${path} cannot be read`, { cause: err });
      }
    }
    if (text !== undefined) store.#load(text);
    return store;
  }

  #load(text: string): void {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (cause) {
      throw new TensorClawError(
        "config_invalid",
        `state file ${this.#path} is not valid JSON; move it away to start with an empty state`,
        { cause },
      );
    }
    const d = doc as Partial<StateFile> | null;
    if (typeof d !== "object" || d === null || d.version !== 1) {
      throw new TensorClawError("config_invalid", `state file ${this.#path} has an unknown format`);
    }
    for (const [hotkey, list] of Object.entries(d.probes ?? {})) {
      if (!Array.isArray(list)) continue;
      const records = list.map(parseProbeRecord).filter((r): r is ProbeRecord => r !== undefined);
      if (records.length > 0) this.#probes.set(hotkey, records.slice(-PROBE_HISTORY_SIZE));
    }
    if (Array.isArray(d.audits)) {
      const records = d.audits.map(parseAuditRecord).filter((r): r is AuditRecord => r !== undefined);
      this.#addAudits(records);
    }
    if (Array.isArray(d.pendingCommits)) {
      this.#commits = d.pendingCommits
        .map(parsePendingCommit)
        .filter((c): c is PendingCommit => c !== undefined);
    }
  }

  #persist(): Promise<void> {
    const snapshot: StateFile = {
      version: 1,
      probes: Object.fromEntries(this.#probes),
      audits: [...this.#audits.values()].flat(),
      pendingCommits: this.#commits,
    };
    const text = `${JSON.stringify(snapshot)}\n`;
    const run = async () => {
      const dir = dirname(this.#path);
      await mkdir(dir, { recursive: true });
      const tmp = `${this.#path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
      try {
        const fh = await open(tmp, "w", 0o600);
        try {
          await fh.writeFile(text, "utf8");
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, this.#path);
      } catch (err) {
        await rm(tmp, { force: true });
        throw err;
      }
      // The rename is durable only once the folder entry is on disk.
      const dh = await open(dir, "r");
      try {
        await dh.sync();
      } finally {
        await dh.close();
      }
    };
    const next = this.#queue.then(run, run);
    this.#queue = next.catch(() => {});
    return next;
  }

  appendProbes(entries: readonly ProbeEntry[]): Promise<void> {
    for (const e of entries) {
      const list = this.#probes.get(e.hotkey) ?? [];
      list.push(e.record);
      if (list.length > PROBE_HISTORY_SIZE) list.splice(0, list.length - PROBE_HISTORY_SIZE);
      this.#probes.set(e.hotkey, list);
    }
    return this.#persist();
  }

  async probeHistory(): Promise<Map<string, ProbeRecord[]>> {
    return new Map([...this.#probes].map(([k, v]) => [k, [...v]]));
  }

  #addAudits(records: readonly AuditRecord[]): void {
    for (const r of records) {
      const key = pairKey(r.hotkey, r.model);
      const list = this.#audits.get(key) ?? [];
      list.push(r);
      if (list.length > AUDIT_HISTORY_SIZE) list.splice(0, list.length - AUDIT_HISTORY_SIZE);
      this.#audits.set(key, list);
    }
  }

  appendAudits(records: readonly AuditRecord[]): Promise<void> {
    this.#addAudits(records);
    return this.#persist();
  }

  async auditHistory(): Promise<AuditRecord[]> {
    return [...this.#audits.values()].flat();
  }

  async pruneMiners(cutoffMs: number): Promise<number> {
    const gone = new Set<string>();
    for (const [hotkey, list] of this.#probes) {
      const newest = list.at(-1);
      if (newest === undefined || newest.atMs < cutoffMs) {
        this.#probes.delete(hotkey);
        gone.add(hotkey);
      }
    }
    let auditsDropped = 0;
    for (const [key, list] of this.#audits) {
      const newest = list.at(-1);
      if (newest === undefined || newest.atMs < cutoffMs || gone.has(newest.hotkey)) {
        this.#audits.delete(key);
        auditsDropped++;
      }
    }
    if (gone.size > 0 || auditsDropped > 0) await this.#persist();
    return gone.size;
  }

  async pendingCommits(): Promise<PendingCommit[]> {
    return [...this.#commits];
  }

  addPendingCommit(commit: PendingCommit): Promise<void> {
    this.#commits = [...this.#commits.filter((c) => c.hash !== commit.hash), commit];
    return this.#persist();
  }

  removePendingCommits(hashes: readonly string[]): Promise<void> {
    const drop = new Set(hashes);
    this.#commits = this.#commits.filter((c) => !drop.has(c.hash));
    return this.#persist();
  }

  async close(): Promise<void> {
    await this.#queue;
  }
}
