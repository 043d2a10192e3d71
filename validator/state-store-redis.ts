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
};

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
    const miners = await this.#redis.smembers(`${this.#p}miners`);
    const pipe = this.#redis.pipeline();
    for (const hk of miners) pipe.lrange(`${this.#p}probes:${hk}`, 0, PROBE_HISTORY_SIZE - 1);
    const results = (await pipe.exec()) ?? [];
    const out = new Map<string, ProbeRecord[]>();
    miners.forEach((hk, i) => {
      const [err, raw] = results[i] ?? [null, []];
      if (err !== null) return;
      const records = parseList(raw, parseProbeRecord);
      if (records.length > 0) out.set(hk, records);
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
   */
  async #auditLists(): Promise<Map<string, AuditRecord[]>> {
    const ids = await this.#redis.smembers(`${this.#p}audited`);
    const pipe = this.#redis.pipeline();
    for (const id of ids) pipe.lrange(`${this.#p}audits:${id}`, 0, AUDIT_HISTORY_SIZE - 1);
    const results = (await pipe.exec()) ?? [];
    const out = new Map<string, AuditRecord[]>();
    ids.forEach((id, i) => {
      const [err, raw] = results[i] ?? [null, []];
      // Unread is not empty: a failed read must not get the history pruned.
      if (err !== null) return;
      const pair = unpairId(id);
      if (pair === undefined) {
        out.set(id, []);
        return;
      }
      out.set(
        id,
        parseList(raw, parseAuditRecord).filter((r) => r.hotkey === pair.hotkey && r.model === pair.model),
      );
    });
    return out;
  }

  async auditHistory(): Promise<AuditRecord[]> {
    return [...(await this.#auditLists()).values()].flat();
  }

  async pruneMiners(cutoffMs: number): Promise<number> {
    const history = await this.probeHistory();
    const miners = await this.#redis.smembers(`${this.#p}miners`);
    const stale = miners.filter((hk) => {
      const newest = history.get(hk)?.at(-1);
      return newest === undefined || newest.atMs < cutoffMs;
    });
    const gone = new Set(stale);
    const staleAudits = [...(await this.#auditLists())]
      .filter(([id, list]) => {
        const newest = list.at(-1);
        const pair = unpairId(id);
        return newest === undefined || newest.atMs < cutoffMs || pair === undefined || gone.has(pair.hotkey);
      })
      .map(([id]) => id);
    if (stale.length === 0 && staleAudits.length === 0) return 0;
    const pipe = this.#redis.multi();
    for (const hk of stale) pipe.del(`${this.#p}probes:${hk}`);
    if (stale.length > 0) pipe.srem(`${this.#p}miners`, ...stale);
    for (const id of staleAudits) pipe.del(`${this.#p}audits:${id}`);
    if (staleAudits.length > 0) pipe.srem(`${this.#p}audited`, ...staleAudits);
    await pipe.exec();
    return stale.length;
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
