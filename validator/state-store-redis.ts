import { readFileSync } from "node:fs";
import type { RedisClient } from "../common/redis-connect.js";
import { AUDIT_HISTORY_SIZE, type AuditRecord, parseAuditRecord } from "./audit/verdicts.js";
import { PROBE_HISTORY_SIZE, type ProbeRecord } from "./scoring.js";
import {
  type ProbeEntry,
  parsePendingCommit,
  parseProbeRecord,
  type ValidatorStateStore,
} from "./state-store.js";
import type { PendingCommit } from "./weights-plan.js";

/** Records appended per script call. */
const RECORDS_PER_SCRIPT_CALL = 500;

const LUA_DIR = new URL("./lua/", import.meta.url);

type ScriptRedis = RedisClient & {
  tcvAppendHistory(numKeys: number, ...args: (string | number)[]): Promise<number>;
  tcvPruneHistories(numKeys: number, ...args: (string | number)[]): Promise<number>;
};

/** One history as read: its records, oldest first, and its newest entry as stored ("" when empty). */
interface ReadHistory<T> {
  readonly records: T[];
  readonly head: string;
}

/** A history a pruning pass found stale, with its newest entry as read. */
interface StaleHistory {
  readonly member: string;
  readonly head: string;
}

/**
 * What a pruning pass decided to forget (RedisStateStore.planPrune), each
 * history with what it held when read, so that forgetting skips any that
 * changed since.
 */
export interface PrunePlan {
  readonly miners: readonly StaleHistory[];
  /** `follows`: the index in `miners` of the miner whose forgetting alone makes this one stale. */
  readonly audits: readonly (StaleHistory & { readonly follows: number | undefined })[];
}

/**
 * The set member (and key suffix) of one (hotkey, model) audit history.
 * Both parts are URI-encoded, so the one `:` between them is unambiguous
 * whatever characters a model id holds.
 */
function pairId(hotkey: string, model: string): string {
  return `${encodeURIComponent(hotkey)}:${encodeURIComponent(model)}`;
}

function unpairId(id: string): { hotkey: string; model: string } | undefined {
  const parts = id.split(":");
  if (parts.length !== 2) return undefined;
  try {
    return { hotkey: decodeURIComponent(parts[0] as string), model: decodeURIComponent(parts[1] as string) };
  } catch {
    return undefined;
  }
}

/** Parses a list read newest first into records oldest first, skipping what does not parse. */
function parseList<T>(raw: unknown, parse: (x: unknown) => T | undefined): T[] {
  if (!Array.isArray(raw)) return [];
  const out: T[] = [];
  for (const text of [...(raw as string[])].reverse()) {
    try {
      const r = parse(JSON.parse(text));
      if (r !== undefined) out.push(r);
    } catch {
      // A foreign or corrupt entry is skipped, not fatal.
    }
  }
  return out;
}

/**
 * State in Redis, namespaced by the validator's own hotkey so several
 * validators can share one server. Every key carries the same hash tag, so
 * the multi-key append stays on one Redis Cluster slot.
 *
 * Keys (`<p>` = prefix + `{validator hotkey}:`; `<pair>` = URI-encoded
 * hotkey `:` URI-encoded model):
 * - `<p>miners`          set of miner hotkeys with a history
 * - `<p>probes:<hk>`     list of JSON probe records, newest first, trimmed to 100
 * - `<p>audited`         set of `<pair>`s with an audit history
 * - `<p>audits:<pair>`   list of JSON audit records, newest first, trimmed to 100
 * - `<p>commits`         hash: commit hash → JSON pending commit
 */
export class RedisStateStore implements ValidatorStateStore {
  readonly #redis: ScriptRedis;
  readonly #p: string;

  /** `prefix` namespaces the keys (tests use a random one). */
  constructor(redis: RedisClient, validatorHotkey: string, prefix = "tc:validator:") {
    const r = redis as ScriptRedis;
    if (typeof r.tcvAppendHistory !== "function") {
      r.defineCommand("tcvAppendHistory", {
        lua: readFileSync(new URL("append-history.lua", LUA_DIR), "utf8"),
      });
    }
    if (typeof r.tcvPruneHistories !== "function") {
      r.defineCommand("tcvPruneHistories", {
        lua: readFileSync(new URL("prune-histories.lua", LUA_DIR), "utf8"),
      });
    }
    this.#redis = r;
    this.#p = `${prefix}{${validatorHotkey}}:`;
  }

  /** Appends `(list key, JSON record, owner)` entries to their histories in bounded script calls. */
  async #append(
    set: string,
    keep: number,
    entries: readonly { key: string; json: string; owner: string }[],
  ): Promise<void> {
    // Bounded batches keep one script call from blocking Redis for long.
    for (let i = 0; i < entries.length; i += RECORDS_PER_SCRIPT_CALL) {
      const batch = entries.slice(i, i + RECORDS_PER_SCRIPT_CALL);
      await this.#redis.tcvAppendHistory(
        batch.length + 1,
        set,
        ...batch.map((e) => e.key),
        keep,
        ...batch.map((e) => e.json),
        ...batch.map((e) => e.owner),
      );
    }
  }

  appendProbes(entries: readonly ProbeEntry[]): Promise<void> {
    return this.#append(
      `${this.#p}miners`,
      PROBE_HISTORY_SIZE,
      entries.map((e) => ({
        key: `${this.#p}probes:${e.hotkey}`,
        json: JSON.stringify(e.record),
        owner: e.hotkey,
      })),
    );
  }

  async probeHistory(): Promise<Map<string, ProbeRecord[]>> {
    const out = new Map<string, ProbeRecord[]>();
    for (const [hk, h] of await this.#probeLists()) if (h.records.length > 0) out.set(hk, h.records);
    return out;
  }

  /** Probe histories by hotkey; a history whose read failed is left out (unread is not empty). */
  #probeLists(): Promise<Map<string, ReadHistory<ProbeRecord>>> {
    return this.#readLists(
      `${this.#p}miners`,
      (hk) => `${this.#p}probes:${hk}`,
      PROBE_HISTORY_SIZE,
      (_, raw) => parseList(raw, parseProbeRecord),
    );
  }

  /** Reads every history whose owner is in `set`, parsing each with `parse`. */
  async #readLists<T>(
    set: string,
    keyOf: (member: string) => string,
    keep: number,
    parse: (member: string, raw: unknown) => T[],
  ): Promise<Map<string, ReadHistory<T>>> {
    const members = await this.#redis.smembers(set);
    const pipe = this.#redis.pipeline();
    for (const m of members) pipe.lrange(keyOf(m), 0, keep - 1);
    const results = (await pipe.exec()) ?? [];
    const out = new Map<string, ReadHistory<T>>();
    members.forEach((m, i) => {
      const [err, raw] = results[i] ?? [new Error("no reply"), []];
      if (err !== null) return;
      const head = Array.isArray(raw) && typeof raw[0] === "string" ? raw[0] : "";
      out.set(m, { records: parse(m, raw), head });
    });
    return out;
  }

  appendAudits(records: readonly AuditRecord[]): Promise<void> {
    return this.#append(
      `${this.#p}audited`,
      AUDIT_HISTORY_SIZE,
      records.map((r) => {
        const id = pairId(r.hotkey, r.model);
        return { key: `${this.#p}audits:${id}`, json: JSON.stringify(r), owner: id };
      }),
    );
  }

  /**
   * Audit histories by pair id, oldest first. Records that do not belong to
   * their pair are dropped; a foreign pair id reads as empty (and is pruned).
   * A history whose read failed is left out: unread is not empty, and must
   * not get the history pruned.
   */
  #auditLists(): Promise<Map<string, ReadHistory<AuditRecord>>> {
    return this.#readLists(
      `${this.#p}audited`,
      (id) => `${this.#p}audits:${id}`,
      AUDIT_HISTORY_SIZE,
      (id, raw) => {
        const pair = unpairId(id);
        if (pair === undefined) return [];
        return parseList(raw, parseAuditRecord).filter(
          (r) => r.hotkey === pair.hotkey && r.model === pair.model,
        );
      },
    );
  }

  async auditHistory(): Promise<AuditRecord[]> {
    return [...(await this.#auditLists()).values()].flatMap((h) => h.records);
  }

  async pruneMiners(cutoffMs: number): Promise<number> {
    return this.applyPrune(await this.planPrune(cutoffMs));
  }

  /**
   * The reading half of pruneMiners: the histories to forget, each with
   * what it held when read. Probes keep landing while a pass runs (the
   * validator prunes beside its probe schedule), so the pass reads, then
   * forgets atomically only what is unchanged (applyPrune).
   */
  async planPrune(cutoffMs: number): Promise<PrunePlan> {
    const probes = await this.#probeLists();
    const miners: StaleHistory[] = [];
    const index = new Map<string, number>();
    for (const [hk, h] of probes) {
      const newest = h.records.at(-1);
      if (newest !== undefined && newest.atMs >= cutoffMs) continue;
      index.set(hk, miners.length);
      miners.push({ member: hk, head: h.head });
    }
    const audits: PrunePlan["audits"][number][] = [];
    for (const [id, h] of await this.#auditLists()) {
      const newest = h.records.at(-1);
      const pair = unpairId(id);
      if (newest === undefined || newest.atMs < cutoffMs || pair === undefined) {
        audits.push({ member: id, head: h.head, follows: undefined });
        continue;
      }
      const follows = index.get(pair.hotkey);
      if (follows !== undefined) audits.push({ member: id, head: h.head, follows });
    }
    return { miners, audits };
  }

  /**
   * The writing half of pruneMiners, one atomic script: forgets what `plan`
   * names, except histories that changed since they were read (and the
   * audits that follow a miner kept so). Returns the miners forgotten.
   */
  async applyPrune(plan: PrunePlan): Promise<number> {
    if (plan.miners.length === 0 && plan.audits.length === 0) return 0;
    return this.#redis.tcvPruneHistories(
      2 + plan.miners.length + plan.audits.length,
      `${this.#p}miners`,
      `${this.#p}audited`,
      ...plan.miners.map((m) => `${this.#p}probes:${m.member}`),
      ...plan.audits.map((a) => `${this.#p}audits:${a.member}`),
      plan.miners.length,
      ...plan.miners.flatMap((m) => [m.member, m.head]),
      ...plan.audits.flatMap((a) => [a.member, a.head, a.follows === undefined ? 0 : a.follows + 1]),
    );
  }

  async pendingCommits(): Promise<PendingCommit[]> {
    const all = await this.#redis.hvals(`${this.#p}commits`);
    const out: PendingCommit[] = [];
    for (const text of all) {
      try {
        const c = parsePendingCommit(JSON.parse(text));
        if (c !== undefined) out.push(c);
      } catch {
        // Skipped, as above.
      }
    }
    return out.sort((a, b) => a.commitBlock - b.commitBlock);
  }

  async addPendingCommit(commit: PendingCommit): Promise<void> {
    await this.#redis.hset(`${this.#p}commits`, commit.hash, JSON.stringify(commit));
  }

  async removePendingCommits(hashes: readonly string[]): Promise<void> {
    if (hashes.length > 0) await this.#redis.hdel(`${this.#p}commits`, ...hashes);
  }

  async close(): Promise<void> {}
}
