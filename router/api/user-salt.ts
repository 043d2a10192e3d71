import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Logger } from "../../common/logger.js";
import { writePrivateFileSync } from "../../common/private-file.js";
import type { RedisClient } from "../../common/redis-connect.js";
import { DEFAULT_LEDGER_PREFIX } from "../ledger/redis.js";

/** How long startup waits for Redis to answer before using the copy in the data folder. */
export const DEFAULT_SALT_WAIT_MS = 5000;

/** Where the salt of the `user` hash comes from. */
export interface UserSaltSources {
  /** `--user-salt` / `TENSORCLAW_USER_SALT`: wins over everything. */
  readonly configured: string | undefined;
  /** The router's Redis: the salt every replica shares lives there. */
  readonly redis: RedisClient | undefined;
  /** Key prefix of the router's Redis keys (default `tc:`). */
  readonly prefix?: string;
  /** File in --data-dir keeping this router's salt across restarts (undefined: none). */
  readonly file: string | undefined;
  readonly logger: Logger;
  /** How long to wait for Redis at startup. */
  readonly waitMs?: number;
  /** Random source of a new salt (default: 32 random bytes, hex). */
  readonly newSalt?: () => string;
}

/** Where the resolved salt came from (for the log and tests). */
export type UserSaltOrigin = "configured" | "redis" | "file" | "new";

/** The Redis key of the shared salt. */
export function userSaltKey(prefix = DEFAULT_LEDGER_PREFIX): string {
  return `${prefix}user-salt`;
}

/**
 * Decides the secret of the `user` hash, once, at startup, so that every
 * replica hashes the same user of the same account the same way:
 *
 * 1. `--user-salt` when given.
 * 2. With Redis: the salt stored under `<prefix>user-salt`, created once
 *    with SET NX by the first router (from its own saved salt if it had one,
 *    so a router moving onto Redis keeps its hashes) and read by every
 *    replica. A copy goes to the data folder, so a restart while Redis is
 *    unreachable still uses the shared salt.
 * 3. Otherwise (or Redis unreachable): the salt saved in the data folder,
 *    created at random the first time.
 */
export async function resolveUserSalt(s: UserSaltSources): Promise<{ salt: string; origin: UserSaltOrigin }> {
  if (s.configured !== undefined) return { salt: s.configured, origin: "configured" };
  const saved = s.file === undefined ? undefined : readSalt(s.file, s.logger);
  const fresh = () => (s.newSalt ?? (() => randomBytes(32).toString("hex")))();
  if (s.redis !== undefined) {
    let shared: string | undefined;
    try {
      shared = await sharedSalt(s.redis, userSaltKey(s.prefix), saved ?? fresh(), s.waitMs);
    } catch (err) {
      s.logger.warn(
        { err: err instanceof Error ? err.message : String(err) },
        saved === undefined
          ? "redis unreachable: no shared user salt known, using a new one (user hashes differ from other replicas until a restart with Redis up; or set --user-salt)"
          : "redis unreachable: using the user salt saved in --data-dir",
      );
    }
    if (shared !== undefined) {
      if (s.file !== undefined && shared !== saved) {
        try {
          writeSalt(s.file, shared);
        } catch (err) {
          // Only the copy for a restart during an outage is lost.
          s.logger.warn({ err: (err as Error).message, file: s.file }, "cannot save the shared user salt");
        }
      }
      return { salt: shared, origin: "redis" };
    }
  }
  if (saved !== undefined) return { salt: saved, origin: "file" };
  const salt = fresh();
  if (s.file !== undefined) writeSalt(s.file, salt);
  return { salt, origin: "new" };
}

/** Creates the shared salt if absent (SET NX), then reads whichever won. */
async function sharedSalt(redis: RedisClient, key: string, candidate: string, waitMs = DEFAULT_SALT_WAIT_MS) {
  await whenReady(redis, waitMs);
  await redis.set(key, candidate, "NX");
  const salt = await redis.get(key);
  if (salt === null || salt === "") throw new Error(`${key} vanished after SET NX`);
  return salt;
}

/** Resolves once the client is connected (commands fail at once before that: no offline queue). */
function whenReady(redis: RedisClient, timeoutMs: number): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      reject(new Error(`not connected after ${timeoutMs} ms`));
    }, timeoutMs);
    redis.once("ready", onReady);
  });
}

function readSalt(file: string, logger: Logger): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8").trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      logger.warn({ err: (err as Error).message, file }, "cannot read the saved user salt");
    }
    return undefined;
  }
  return text === "" ? undefined : text;
}

function writeSalt(file: string, salt: string): void {
  writePrivateFileSync(file, `${salt}\n`);
}
