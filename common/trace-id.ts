import { randomFillSync } from "node:crypto";

/** Random bytes drawn per refill of the id pool: 256 ids per call into the CSPRNG. */
const POOL_BYTES = 4096;
const ID_BYTES = 16;
const pool = Buffer.alloc(POOL_BYTES);
let poolAt = POOL_BYTES;

/**
 * 16 bytes from the system CSPRNG, taken from a pool refilled 4 KiB at a
 * time: one `randomBytes(16)` per request cost the router about 30 us of
 * its hot path, the pool a fraction of that. The bytes are just as random;
 * each is handed out once.
 */
function pooledRandom(n: number): Buffer {
  if (poolAt + n > POOL_BYTES) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const out = pool.subarray(poolAt, poolAt + n);
  poolAt += n;
  return out;
}

/**
 * A request's id: 16 random bytes as 32 lower-case hex characters. The
 * router's `x-request-id`, and the `trace_id` a miner sees (tunnel.proto):
 * drawn fresh for every user request and every probe alike, so an id says
 * nothing about the router, its traffic or which requests are probes.
 */
export function newTraceId(random: (n: number) => Buffer = pooledRandom): string {
  return random(ID_BYTES).toString("hex");
}

/** What a well-formed trace id looks like. */
export const TRACE_ID = /^[0-9a-f]{32}$/;
