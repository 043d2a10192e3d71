import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";
import { PROBE_HISTORY_SIZE, type ProbeRecord } from "./scoring.js";
import {
  type ProbeEntry,
  parsePendingCommit,
  parseProbeRecord,
  type ValidatorStateStore,
} from "./state-store.js";
import type { PendingCommit } from "./weights-plan.js";

/** Probe records appended per script call. */
const PROBES_PER_SCRIPT_CALL = 500;

const LUA_DIR = new URL("./lua/", import.meta.url);

type ScriptRedis = Redis & {
  tcvAppendProbes(numKeys: number, ...args: (string | number)[]): Promise<number>;
};

/**
 * State in Redis, namespaced by the validator's own hotkey so several
 * validators can share one server. Every key carries the same hash tag, so
 * the multi-key append stays on one Redis Cluster slot.
 *
 * Keys (`<p>` = prefix + `{validator hotkey}:`):
 * - `<p>miners`        set of miner hotkeys with a history
 * - `<p>probes:<hk>`   list of JSON probe records, newest first, trimmed to 100
 * - `<p>commits`       hash: commit hash → JSON pending commit
 */
export class RedisStateStore implements ValidatorStateStore {
  readonly #redis: ScriptRedis;
  readonly #p: string;

  /** `prefix` namespaces the keys (tests use a random one). */
  constructor(redis: Redis, validatorHotkey: string, prefix = "tc:validator:") {
    const r = redis as ScriptRedis;
    if (typeof r.tcvAppendProbes !== "function") {
      r.defineCommand("tcvAppendProbes", {
        lua: readFileSync(new URL("append-probes.lua", LUA_DIR), "utf8"),
      });
    }
    this.#redis = r;
    this.#p = `${prefix}{${validatorHotkey}}:`;
  }

  async appendProbes(entries: readonly ProbeEntry[]): Promise<void> {
    if (entries.length === 0) return;
    // Bounded batches keep one script call from blocking Redis for long.
    for (let i = 0; i < entries.length; i += PROBES_PER_SCRIPT_CALL) {
      const batch = entries.slice(i, i + PROBES_PER_SCRIPT_CALL);
      await this.#redis.tcvAppendProbes(
        batch.length + 1,
        `${this.#p}miners`,
        ...batch.map((e) => `${this.#p}probes:${e.hotkey}`),
        PROBE_HISTORY_SIZE,
        ...batch.map((e) => JSON.stringify(e.record)),
        ...batch.map((e) => e.hotkey),
      );
    }
  }

  async probeHistory(): Promise<Map<string, ProbeRecord[]>> {
    const miners = await this.#redis.smembers(`${this.#p}miners`);
    const pipe = this.#redis.pipeline();
    for (const hk of miners) pipe.lrange(`${this.#p}probes:${hk}`, 0, PROBE_HISTORY_SIZE - 1);
    const results = (await pipe.exec()) ?? [];
    const out = new Map<string, ProbeRecord[]>();
    miners.forEach((hk, i) => {
      const [err, raw] = results[i] ?? [null, []];
      if (err !== null || !Array.isArray(raw)) return;
      const records: ProbeRecord[] = [];
      // Stored newest first; callers want oldest first.
      for (const text of [...(raw as string[])].reverse()) {
        try {
          const r = parseProbeRecord(JSON.parse(text));
          if (r !== undefined) records.push(r);
        } catch {
          // A foreign or corrupt entry is skipped, not fatal.
        }
      }
      if (records.length > 0) out.set(hk, records);
    });
    return out;
  }

  async pruneMiners(cutoffMs: number): Promise<number> {
    const history = await this.probeHistory();
    const miners = await this.#redis.smembers(`${this.#p}miners`);
    const stale = miners.filter((hk) => {
      const newest = history.get(hk)?.at(-1);
      return newest === undefined || newest.atMs < cutoffMs;
    });
    if (stale.length === 0) return 0;
    const pipe = this.#redis.multi();
    for (const hk of stale) pipe.del(`${this.#p}probes:${hk}`);
    pipe.srem(`${this.#p}miners`, ...stale);
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
