import { hash, randomBytes } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import { TensorClawError } from "../../common/errors.js";
import { writePrivateFileSync } from "../../common/private-file.js";
import { type ReplicaWait, runBatch } from "../../common/redis-batch.js";
import type { RedisClient } from "../../common/redis-connect.js";
import type { RateLimits } from "./rate-limiter.js";

/** What the router keeps about one API key. The key itself is never stored. */
export interface ApiKeyRecord {
  /** Public id (for `keys list` / `keys revoke`), derived from the hash. */
  readonly id: string;
  readonly name: string;
  /** SHA-256 of the key, hex. Keys are 256-bit random, so a plain hash is enough. */
  readonly hash: string;
  /** First characters of the key, so an owner can recognise it. */
  readonly hint: string;
  readonly createdAtMs: number;
  readonly revokedAtMs: number | null;
  readonly limits: RateLimits;
}

/** Where key records live. */
export interface ApiKeyStore {
  put(record: ApiKeyRecord): Promise<void>;
  findByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  list(): Promise<ApiKeyRecord[]>;
  /**
   * How many keys there are, revoked ones included: cheap, unlike `list`.
   * Keys are never deleted, so a count that has not changed means the set of
   * key ids has not changed either (the deposit watcher relies on it).
   */
  count(): Promise<number>;
  /** Every key id (revoked ones too), in no particular order; lighter than `list`. */
  ids(): Promise<string[]>;
  /** Marks the key revoked; false when no key has this id. */
  revoke(id: string, nowMs: number): Promise<boolean>;
}

const KEY_PREFIX = "tc-";
/** `retry-after` of the 503 for a key that cannot be checked while the key store is unreachable. */
const KEY_STORE_RETRY_AFTER_MS = 1000;

/** Where the embedded key store lives when the router has no Redis (relative to the working folder). */
export const DEFAULT_KEYS_FILE = ".tensorclaw/api-keys.json";

/** SHA-256 hex of a key. */
export function hashKey(key: string): string {
  return hash("sha256", key, "hex");
}

/** A key's public id: derived from its hash, so a store can list ids without reading records. */
export function keyIdOf(hash: string): string {
  return `key_${hash.slice(0, 16)}`;
}

/** Reads the key out of an `Authorization: Bearer <key>` header; undefined when absent or not Bearer. */
export function bearerKey(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  return m?.[1];
}

/** Creating, checking, listing and revoking API keys over a store. */
export class ApiKeys {
  /** Valid records last read from the store, by hash: the fallback while the store is down. */
  private readonly lastKnown = new Map<string, ApiKeyRecord>();

  constructor(
    private readonly store: ApiKeyStore,
    private readonly randomKeyBytes: (n: number) => Buffer = randomBytes,
  ) {}

  /** Makes a new key. The returned `key` is shown once and never stored. */
  async create(
    name: string,
    limits: RateLimits,
    nowMs: number,
  ): Promise<{ key: string; record: ApiKeyRecord }> {
    const made = this.mint(name, limits, nowMs);
    await this.store.put(made.record);
    return made;
  }

  /**
   * A new key and its record, not stored yet: for a caller that must know
   * the record should storing it fail (`keys create` revokes it then).
   */
  mint(name: string, limits: RateLimits, nowMs: number): { key: string; record: ApiKeyRecord } {
    const key = KEY_PREFIX + this.randomKeyBytes(32).toString("base64url");
    const hash = hashKey(key);
    const record: ApiKeyRecord = {
      id: keyIdOf(hash),
      name,
      hash,
      hint: `${key.slice(0, 7)}…`,
      createdAtMs: nowMs,
      revokedAtMs: null,
      limits,
    };
    return { key, record };
  }

  /** Stores a record made by `mint`. */
  save(record: ApiKeyRecord): Promise<void> {
    return this.store.put(record);
  }

  /**
   * The record for an Authorization header. Throws `unauthenticated` when no
   * key was given and `invalid_api_key` when it is unknown or revoked (the
   * same answer for both, so a caller cannot tell a revoked key from a typo).
   */
  async authenticate(authorization: string | undefined): Promise<ApiKeyRecord> {
    const key = bearerKey(authorization);
    if (key === undefined) {
      throw new TensorClawError(
        "unauthenticated",
        "Missing API key: send it as `Authorization: Bearer <key>`.",
      );
    }
    const hash = hashKey(key);
    let rec: ApiKeyRecord | undefined;
    try {
      rec = key.length > 200 ? undefined : await this.store.findByHash(hash);
    } catch (cause) {
      // The store (Redis) is unreachable: a key seen valid before keeps being served, as the
      // router keeps serving (and spooling usage) while Redis is down. Any other key cannot be
      // checked yet: a retryable 503, with the time after which to try again.
      rec = this.lastKnown.get(hash);
      if (rec === undefined) {
        throw new TensorClawError("unavailable", "The API key store is unreachable; retry shortly.", {
          retryAfterMs: KEY_STORE_RETRY_AFTER_MS,
          cause,
        });
      }
    }
    if (rec === undefined || rec.revokedAtMs !== null) {
      this.lastKnown.delete(hash);
      throw new TensorClawError("invalid_api_key", "Incorrect or revoked API key.");
    }
    this.lastKnown.set(hash, rec);
    return rec;
  }

  list(): Promise<ApiKeyRecord[]> {
    return this.store.list();
  }

  count(): Promise<number> {
    return this.store.count();
  }

  ids(): Promise<string[]> {
    return this.store.ids();
  }

  revoke(id: string, nowMs: number): Promise<boolean> {
    return this.store.revoke(id, nowMs);
  }
}

/** How long a RedisApiKeyStore answers a known key from memory. */
export const DEFAULT_KEY_FRESH_MS = 1000;
/** How often a FileApiKeyStore checks its file for changes. */
export const DEFAULT_KEY_RELOAD_CHECK_MS = 1000;

/** Most key records a RedisApiKeyStore remembers between lookups. */
export const MAX_CACHED_KEYS = 10_000;

/**
 * Keys in one Redis hash (field: key hash, value: the record as JSON).
 * Lookups of a known key are answered from memory for `freshForMs` (1 s),
 * like the file store's reload check: a request does not wait for a Redis
 * round trip to authenticate, and a revocation made elsewhere (the CLI,
 * another replica) reaches this router within that time. Unknown keys are
 * not remembered, so a key just created works at once.
 */
export class RedisApiKeyStore implements ApiKeyStore {
  private readonly key: string;
  private readonly cache = new Map<string, { record: ApiKeyRecord; atMs: number }>();

  constructor(
    private readonly redis: RedisClient,
    prefix = "tc:",
    private readonly clock: () => number = Date.now,
    private readonly freshForMs = DEFAULT_KEY_FRESH_MS,
    /**
     * With it, a record counts as written only once that many replicas have
     * it (`keys --redis-wait-replicas`): a key handed out, or revoked, then
     * survives a failover. Otherwise `put` fails `unavailable`, the write
     * applied on the master only.
     */
    private readonly wait?: ReplicaWait,
  ) {
    this.key = `${prefix}apikeys`;
  }

  async put(record: ApiKeyRecord): Promise<void> {
    const key = this.key;
    const json = JSON.stringify(record);
    this.cache.delete(record.hash);
    if (this.wait === undefined) await this.redis.hset(key, record.hash, json);
    else await runBatch(this.redis, [[{ key, run: (p) => p.hset(key, record.hash, json) }]], this.wait);
  }

  async findByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const now = this.clock();
    const hit = this.cache.get(hash);
    if (hit !== undefined && now - hit.atMs < this.freshForMs) return hit.record;
    const text = await this.redis.hget(this.key, hash);
    if (text === null) {
      this.cache.delete(hash);
      return undefined;
    }
    const record = JSON.parse(text) as ApiKeyRecord;
    // Entries are a few hundred bytes. A full cache drops the entry read longest ago (a Map keeps
    // insertion order, and a re-read entry is inserted again), so more keys in use than it holds
    // cost a Redis read for the least used of them, not for all of them at once.
    this.cache.delete(hash);
    if (this.cache.size >= MAX_CACHED_KEYS) {
      const oldest = this.cache.keys().next();
      if (oldest.done !== true) this.cache.delete(oldest.value);
    }
    this.cache.set(hash, { record, atMs: now });
    return record;
  }

  /** Key records remembered between lookups (at most 10,000). */
  get cachedKeys(): number {
    return this.cache.size;
  }

  async list(): Promise<ApiKeyRecord[]> {
    const all = await this.redis.hvals(this.key);
    return all.map((t) => JSON.parse(t) as ApiKeyRecord).sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  count(): Promise<number> {
    return this.redis.hlen(this.key);
  }

  /** The hash's field names only (64 bytes each, no record parsed). */
  async ids(): Promise<string[]> {
    return (await this.redis.hkeys(this.key)).map(keyIdOf);
  }

  async revoke(id: string, nowMs: number): Promise<boolean> {
    const rec = (await this.list()).find((r) => r.id === id);
    if (rec === undefined) return false;
    if (rec.revokedAtMs === null) await this.put({ ...rec, revokedAtMs: nowMs });
    // Revoked already, maybe by a run whose wait failed: written again (as it is), so that this
    // run's wait covers it (WAIT counts only the writes of its own connection).
    else if (this.wait !== undefined) await this.put(rec);
    return true;
  }
}

interface KeyFile {
  version: 1;
  keys: ApiKeyRecord[];
}

/**
 * Keys in a JSON file, for a router without Redis. Writes replace the file
 * atomically (mode 0600). Changes made by another process (`tensorclaw keys
 * revoke`) are picked up within `reloadCheckMs`.
 */
export class FileApiKeyStore implements ApiKeyStore {
  private byHash = new Map<string, ApiKeyRecord>();
  private mtimeMs = -1;
  private checkedAtMs = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly path: string,
    private readonly clock: () => number = Date.now,
    private readonly reloadCheckMs = DEFAULT_KEY_RELOAD_CHECK_MS,
  ) {
    this.reload();
  }

  private reload(): void {
    let mtime: number;
    try {
      mtime = statSync(this.path).mtimeMs;
    } catch {
      this.byHash = new Map();
      this.mtimeMs = -1;
      return;
    }
    if (mtime === this.mtimeMs) return;
    const file = JSON.parse(readFileSync(this.path, "utf8")) as KeyFile;
    if (file.version !== 1 || !Array.isArray(file.keys)) {
      throw new TensorClawError("config_invalid", `invalid API key file ${this.path}`);
    }
    this.byHash = new Map(file.keys.map((k) => [k.hash, k]));
    this.mtimeMs = mtime;
  }

  private fresh(): void {
    const now = this.clock();
    if (now - this.checkedAtMs < this.reloadCheckMs) return;
    this.checkedAtMs = now;
    this.reload();
  }

  private write(): void {
    const file: KeyFile = { version: 1, keys: [...this.byHash.values()] };
    writePrivateFileSync(this.path, `${JSON.stringify(file, null, 2)}\n`);
    this.mtimeMs = statSync(this.path).mtimeMs;
  }

  async put(record: ApiKeyRecord): Promise<void> {
    this.reload();
    this.byHash.set(record.hash, record);
    this.write();
  }

  async findByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    this.fresh();
    return this.byHash.get(hash);
  }

  async list(): Promise<ApiKeyRecord[]> {
    this.reload();
    return [...this.byHash.values()].sort((a, b) => a.createdAtMs - b.createdAtMs);
  }

  async count(): Promise<number> {
    this.fresh();
    return this.byHash.size;
  }

  async ids(): Promise<string[]> {
    this.fresh();
    return [...this.byHash.values()].map((r) => r.id);
  }

  async revoke(id: string, nowMs: number): Promise<boolean> {
    this.reload();
    const rec = [...this.byHash.values()].find((r) => r.id === id);
    if (rec === undefined) return false;
    if (rec.revokedAtMs === null) {
      this.byHash.set(rec.hash, { ...rec, revokedAtMs: nowMs });
      this.write();
    }
    return true;
  }
}
