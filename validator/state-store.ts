import type { AuditRecord } from "./audit/verdicts.js";
import type { ProbeRecord } from "./scoring.js";
import type { PendingCommit } from "./weights-plan.js";

/** One probe result to append to a miner's history. */
export interface ProbeEntry {
  readonly hotkey: string;
  readonly record: ProbeRecord;
}

/**
 * The validator's durable memory: the last probes per miner (uptime history),
 * the last audits per (miner, model) (verdicts), and weight commits waiting
 * for their reveal (salt included). Survives a restart, so uptime is not
 * reset, a failed model stays failed, and no commit is orphaned.
 */
export interface ValidatorStateStore {
  /** Appends results, keeping only the newest `PROBE_HISTORY_SIZE` per miner. */
  appendProbes(entries: readonly ProbeEntry[]): Promise<void>;
  /** Probe history per miner hotkey, oldest first. */
  probeHistory(): Promise<Map<string, ProbeRecord[]>>;
  /**
   * Appends judged audits, keeping only the newest `AUDIT_HISTORY_SIZE`
   * per (hotkey, model).
   */
  appendAudits(records: readonly AuditRecord[]): Promise<void>;
  /** Every kept audit, each (hotkey, model)'s oldest first. */
  auditHistory(): Promise<AuditRecord[]>;
  /**
   * Forgets miners whose newest probe is older than `cutoffMs` (Unix ms),
   * their audits with them, and every (hotkey, model) audit history whose
   * newest audit is older than `cutoffMs` (a model not audited for that long
   * is no longer served). Returns the number of miners forgotten.
   */
  pruneMiners(cutoffMs: number): Promise<number>;
  /** Commits not yet revealed, oldest first. */
  pendingCommits(): Promise<PendingCommit[]>;
  addPendingCommit(commit: PendingCommit): Promise<void>;
  /** Drops commits by hash (revealed or expired). */
  removePendingCommits(hashes: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

function isNum(x: unknown): x is number {
  return typeof x === "number" && Number.isFinite(x);
}

function isU16Array(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => Number.isInteger(v) && v >= 0 && v <= 0xffff);
}

/** Parses a stored probe record; undefined when it is not one (never trusted blindly). */
export function parseProbeRecord(x: unknown): ProbeRecord | undefined {
  if (typeof x !== "object" || x === null) return undefined;
  const r = x as Record<string, unknown>;
  if (!isNum(r.atMs) || typeof r.ok !== "boolean" || !isNum(r.latencyMs) || !isNum(r.ttftMs))
    return undefined;
  return { atMs: r.atMs, ok: r.ok, latencyMs: r.latencyMs, ttftMs: r.ttftMs };
}

/** Parses a stored pending commit; undefined when it is not one. */
export function parsePendingCommit(x: unknown): PendingCommit | undefined {
  if (typeof x !== "object" || x === null) return undefined;
  const c = x as Record<string, unknown>;
  if (
    !Number.isInteger(c.netuid) ||
    typeof c.hotkey !== "string" ||
    !isU16Array(c.uids) ||
    !isU16Array(c.values) ||
    !isU16Array(c.salt) ||
    c.uids.length !== c.values.length ||
    typeof c.versionKey !== "string" ||
    !/^\d+$/.test(c.versionKey) ||
    typeof c.hash !== "string" ||
    !/^0x[0-9a-f]{64}$/.test(c.hash) ||
    !Number.isInteger(c.commitBlock)
  ) {
    return undefined;
  }
  return {
    netuid: c.netuid as number,
    hotkey: c.hotkey,
    uids: c.uids,
    values: c.values,
    salt: c.salt,
    versionKey: c.versionKey,
    hash: c.hash,
    commitBlock: c.commitBlock as number,
  };
}
