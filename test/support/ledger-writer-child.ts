// A small "router" process for ledger tests: records a deterministic stream
// of usage events through the real recorder (Redis ledger + spool) and
// reports progress on stdout:
//   "settled <n>"  events FROM..n-1 are in the ledger or durably in the spool
//   "done <json>"  everything reached the ledger; the recorder's stats
// Settings come from the environment (see below).
import { Redis } from "ioredis";
import { LEDGER_REDIS_OPTIONS, RedisLedger } from "../../router/ledger/redis.js";
import { UsageRecorder } from "../../router/usage/recorder.js";
import { UsageSpool } from "../../router/usage/spool.js";
import { CONTRACT_OPTIONS } from "./ledger-contract.js";
import { writerEvent } from "./ledger-events.js";

const env = process.env;
const url = env.LEDGER_REDIS_URL as string;
const prefix = env.LEDGER_PREFIX as string;
const spoolDir = env.LEDGER_SPOOL_DIR as string;
const writer = env.LEDGER_WRITER as string;
const from = Number(env.LEDGER_FROM ?? 0);
const count = Number(env.LEDGER_COUNT);
const chunk = Number(env.LEDGER_CHUNK ?? 500);

const redis = new Redis(url, { ...LEDGER_REDIS_OPTIONS, lazyConnect: true });
redis.on("error", () => {});
redis.connect().catch(() => {});
const spool = await UsageSpool.open({ dir: spoolDir });
const recorder = new UsageRecorder({
  ledger: new RedisLedger(redis, CONTRACT_OPTIONS, prefix),
  spool,
  retryMinMs: 20,
  retryMaxMs: 200,
});
for (let i = from; i < count; i += chunk) {
  const end = Math.min(count, i + chunk);
  for (let j = i; j < end; j++) recorder.record(writerEvent(writer, j, Date.now()));
  await recorder.settled();
  process.stdout.write(`settled ${end}\n`);
}
await recorder.idle();
process.stdout.write(`done ${JSON.stringify(recorder.stats())}\n`);
await recorder.close();
await spool.close();
redis.disconnect();
