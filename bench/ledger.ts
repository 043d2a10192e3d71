// Usage-ledger benchmark: `npm run bench:ledger [-- --quick] [-- --json <file>]`.
//
// Measures, against a private local redis-server started for the run:
//   1. redis-benchmark baselines (SET and INCR, plain and -P 16 pipelined);
//   2. usage events/s recorded through the real UsageSink (UsageRecorder ->
//      RedisLedger), 256 miners x 10 models, target >= 50,000/s; then the same
//      on a 3-master Redis Cluster started for the run (`--no-cluster` skips it);
//   3. GetUsage over 256 miners x 10 models with a history of buckets, both
//      in process and as a signed gRPC call, target median <= 50 ms;
//   4. Redis memory per (miner, model) from INFO memory before/after;
//   5. Redis bytes per idempotency marker: the (origin, seq) bit every
//      current router event carries (enough events per miner to fill bitmap
//      chunks, as a day of traffic does), and the request-id set member of
//      the fallback path (events spooled without origin/seq).
// Prints a table of medians; the machine is noisy, so each figure is the
// median of several runs.
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { hotkeyFromMnemonic, initCrypto } from "../common/identity.js";
import { openRedis, type RedisClient } from "../common/redis-connect.js";
import { signedCall } from "../common/validator-call/client.js";
import { allowList, ValidatorAuth } from "../common/validator-call/server.js";
import {
  GetUsageRequest,
  UsageReportServiceClient,
  UsageReportServiceService,
} from "../gen/tensorclaw/v1/usage.js";
import { DEFAULT_LEDGER_OPTIONS } from "../router/ledger/ledger.js";
import { LEDGER_REDIS_OPTIONS, RedisLedger } from "../router/ledger/redis.js";
import { getUsage, usageService } from "../router/services/usage.js";
import type { UsageEvent } from "../router/usage/event.js";
import { UsageRecorder } from "../router/usage/recorder.js";
import { newUsageOrigin, UsageSequencer } from "../router/usage/sequence.js";
import { randomPrefix, startRedis } from "../test/support/redis.js";
import { startRedisCluster, untilReady } from "../test/support/redis-cluster.js";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
/** `--no-cluster` skips the Redis Cluster measurement (it starts three more redis-servers). */
const withCluster = !args.includes("--no-cluster");
const jsonAt = args.indexOf("--json");
const jsonFile = jsonAt === -1 ? undefined : args[jsonAt + 1];

const MINERS = 256;
const MODELS = 10;
const RUNS = quick ? 2 : 5;
const EVENTS_PER_RUN = quick ? 20_000 : 200_000;
const HISTORY_BUCKETS = quick ? 5 : 60;
const READS = quick ? 5 : 21;
/** Marker measurement: miners × events each (a bitmap chunk holds 65,536). */
const MARKER_MINERS = quick ? 2 : 4;
const MARKER_EVENTS_PER_MINER = quick ? 65_536 : 262_144;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function redisBenchmark(port: number, pipeline: number): Record<string, number> {
  const n = quick ? "20000" : "100000";
  const r = spawnSync(
    "redis-benchmark",
    ["-p", String(port), "-q", "-t", "set,incr", "-n", n, "-P", String(pipeline)],
    { encoding: "utf8" },
  );
  const out: Record<string, number> = {};
  // Lines look like "SET: 35211.27 requests per second, p50=..." (after \r progress).
  for (const line of r.stdout.split(/[\r\n]/)) {
    const m = /^(SET|INCR): ([\d.]+) requests per second/.exec(line.trim());
    if (m) out[m[1] as string] = Number(m[2]);
  }
  return out;
}

function hk(i: number): string {
  return `5Bench${String(i).padStart(4, "0")}`;
}

async function usedMemory(redis: RedisClient): Promise<number> {
  const info = await redis.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

/** Median events/s recorded through the real UsageSink (UsageRecorder -> RedisLedger) on `client`. */
async function recordRate(client: RedisClient): Promise<number> {
  const rates: number[] = [];
  let seq = 0;
  for (let run = 0; run < RUNS; run++) {
    const ledger = new RedisLedger(client, DEFAULT_LEDGER_OPTIONS, randomPrefix());
    const recorder = new UsageRecorder({ ledger });
    // As in the router: each event gets the process's origin and a per-miner seq.
    const sink = new UsageSequencer(recorder, newUsageOrigin());
    const t0 = performance.now();
    const now = Date.now();
    for (let i = 0; i < EVENTS_PER_RUN; i++) {
      seq++;
      const e: UsageEvent = {
        requestId: `bench-${run}-${seq}`,
        minerHotkey: hk(seq % MINERS),
        model: `model-${(seq * 7) % MODELS}`,
        promptTokens: 200 + (seq % 300),
        completionTokens: 50 + (seq % 150),
        outcome: "completed",
        startedAtMs: now - 500,
        finishedAtMs: now,
        // Most traffic paid, some free: the ledger counts paid tokens apart.
        paid: seq % 4 !== 0,
      };
      sink.record(e);
      // Yield like a server between request completions.
      if (i % 2000 === 1999) await new Promise((r) => setImmediate(r));
    }
    await recorder.idle();
    const s = (performance.now() - t0) / 1000;
    const st = recorder.stats();
    if (st.counted !== EVENTS_PER_RUN) throw new Error(`counted ${st.counted} of ${EVENTS_PER_RUN}`);
    rates.push(EVENTS_PER_RUN / s);
  }
  return median(rates);
}

/** recordRate on a 3-master cluster started for it (AOF fsynced always when `durable`). */
async function clusterRate(durable: boolean): Promise<number> {
  const cluster = await startRedisCluster({ durable });
  try {
    const client = await openRedis(cluster.url, LEDGER_REDIS_OPTIONS);
    client.on("error", () => {});
    try {
      await untilReady(client);
      return await recordRate(client);
    } finally {
      client.disconnect();
    }
  } finally {
    await cluster.stop();
  }
}

const redisServer = await startRedis();
const port = redisServer.port;
const client = await openRedis(redisServer.url, LEDGER_REDIS_OPTIONS);
await new Promise((r) => client.once("ready", r));
const results: Record<string, number> = {};

try {
  // 1. Baselines, measured in this run on this machine.
  const plain = redisBenchmark(port, 1);
  const piped = redisBenchmark(port, 16);
  results.redisSetPerS = plain.SET ?? 0;
  results.redisIncrPerS = plain.INCR ?? 0;
  results.redisSetP16PerS = piped.SET ?? 0;
  results.redisIncrP16PerS = piped.INCR ?? 0;

  // 2. Recorder throughput: the request path calls record() and moves on.
  results.recordEventsPerS = await recordRate(client);
  // 2b. The same on a 3-master Redis Cluster started for the run (same machine, same run): first
  // without persistence, like the single Redis above, then with every master's AOF fsynced on
  // every write (what the README asks of an operator who wants no acknowledged write lost).
  if (withCluster) {
    results.recordEventsPerSCluster = await clusterRate(false);
    results.recordEventsPerSClusterFsync = await clusterRate(true);
  }

  // 5a. Markers of the (origin, seq) path, measured alone on their own prefix.
  {
    const markerPrefix = randomPrefix();
    const markerLedger = new RedisLedger(client, DEFAULT_LEDGER_OPTIONS, markerPrefix);
    const origin = newUsageOrigin();
    const now = Date.now();
    const batch: UsageEvent[] = [];
    const flush = async () => {
      const r = await markerLedger.record(batch, now);
      if (r.counted !== batch.length) throw new Error(`markers: counted ${r.counted} of ${batch.length}`);
      batch.length = 0;
    };
    for (let seq = 0; seq < MARKER_EVENTS_PER_MINER; seq++) {
      for (let m = 0; m < MARKER_MINERS; m++) {
        batch.push({
          requestId: `mark-${m}-${seq}`,
          minerHotkey: hk(m),
          model: "model-0",
          promptTokens: 100,
          completionTokens: 20,
          outcome: "completed",
          startedAtMs: now - 1,
          finishedAtMs: now,
          origin,
          seq,
        });
        if (batch.length === 5000) await flush();
      }
    }
    if (batch.length > 0) await flush();
    // Too few bytes for INFO memory differences (allocator noise): sum what
    // Redis reports for each bitmap key (value, key name and entry overhead).
    let markerBytes = 0;
    let cur = "0";
    do {
      const [next, keys] = await client.scan(cur, "MATCH", `${markerPrefix}*:seen:*`, "COUNT", 5000);
      cur = next;
      for (const key of keys) markerBytes += Number(await client.memory("USAGE", key, "SAMPLES", "0"));
    } while (cur !== "0");
    results.markerEvents = MARKER_MINERS * MARKER_EVENTS_PER_MINER;
    results.bytesPerIdMarker = markerBytes / results.markerEvents;
  }

  // 3 + 4 + 5b. History for 256 x 10 pairs (request-id events: the fallback
  // path's markers are measured here); memory before/after; then reads.
  const prefix = randomPrefix();
  const ledger = new RedisLedger(client, DEFAULT_LEDGER_OPTIONS, prefix);
  const before = await usedMemory(client);
  const now = Date.now();
  const bucket = DEFAULT_LEDGER_OPTIONS.bucketMs;
  let n = 0;
  for (let b = HISTORY_BUCKETS - 1; b >= 0; b--) {
    const batch: UsageEvent[] = [];
    for (let m = 0; m < MINERS; m++) {
      for (let k = 0; k < MODELS; k++) {
        n++;
        batch.push({
          requestId: `hist-${n}`,
          minerHotkey: hk(m),
          model: `model-${k}`,
          promptTokens: 100 + ((m + k) % 50),
          completionTokens: 20 + (m % 30),
          outcome: "completed",
          startedAtMs: now - b * bucket - 1,
          finishedAtMs: now - b * bucket,
          paid: n % 4 !== 0,
        });
      }
    }
    for (let i = 0; i < batch.length; i += 2560) await ledger.record(batch.slice(i, i + 2560), now);
  }
  const withIds = await usedMemory(client);
  // Drop the request-id sets to see the bucket data alone.
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${prefix}*:ids:*`, "COUNT", 5000);
    cursor = next;
    if (keys.length > 0) await client.unlink(...keys);
  } while (cursor !== "0");
  await new Promise((r) => setTimeout(r, 200)); // lazy-free runs in the background
  const dataOnly = await usedMemory(client);
  const pairs = MINERS * MODELS;
  results.historyBuckets = HISTORY_BUCKETS;
  results.bytesPerPair = (dataOnly - before) / pairs;
  results.bytesPerPairBucket = (dataOnly - before) / pairs / HISTORY_BUCKETS;
  results.bytesPerPairFullDay = results.bytesPerPairBucket * (DEFAULT_LEDGER_OPTIONS.retentionMs / bucket);
  results.bytesPerIdMarkerFallback = (withIds - dataOnly) / n;

  // Warm-up: script load and JIT are not what a validator sees every call.
  for (let i = 0; i < 3; i++) await getUsage({ ledger }, GetUsageRequest.fromPartial({}));
  const inProc: number[] = [];
  const hour: number[] = [];
  for (let i = 0; i < READS; i++) {
    const t0 = performance.now();
    const res = await getUsage({ ledger }, GetUsageRequest.fromPartial({}));
    inProc.push(performance.now() - t0);
    if (res.miners.length !== MINERS) throw new Error(`GetUsage saw ${res.miners.length} miners`);
    const t1 = performance.now();
    await getUsage({ ledger }, GetUsageRequest.fromPartial({ windowSeconds: 1800 }));
    hour.push(performance.now() - t1);
  }
  results.getUsage24hMs = median(inProc);
  results.getUsage30minMs = median(hour);

  // The same through a real gRPC server with a signed call.
  await initCrypto();
  const validator = await hotkeyFromMnemonic(
    "bottom drive obey lake curtain smoke basket hold race lonely fit walk//bench",
  );
  const auth = new ValidatorAuth({ routerId: "bench-router", authorize: allowList([validator.address]) });
  const server = new grpc.Server();
  const wrapped = auth.wrap(UsageReportServiceService, usageService({ ledger }));
  server.addService(wrapped.definition, wrapped.implementation);
  const gport = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const grpcClient = new UsageReportServiceClient(`127.0.0.1:${gport}`, grpc.credentials.createInsecure());
  for (let i = 0; i < 3; i++) {
    await signedCall(
      grpcClient,
      UsageReportServiceService.getUsage,
      GetUsageRequest.fromPartial({}),
      validator,
      "bench-router",
    );
  }
  const overGrpc: number[] = [];
  for (let i = 0; i < READS; i++) {
    const t0 = performance.now();
    await signedCall(
      grpcClient,
      UsageReportServiceService.getUsage,
      GetUsageRequest.fromPartial({}),
      validator,
      "bench-router",
    );
    overGrpc.push(performance.now() - t0);
  }
  results.getUsageGrpcMs = median(overGrpc);
  grpcClient.close();
  await new Promise<void>((r) => server.tryShutdown(() => r()));
} finally {
  client.disconnect();
  await redisServer.stop();
}

const f = (x: number | undefined, d = 0) => (x ?? 0).toLocaleString("en-US", { maximumFractionDigits: d });
const rows: [string, string, string][] = [
  ["redis-benchmark SET (plain)", `${f(results.redisSetPerS)} ops/s`, "baseline"],
  ["redis-benchmark INCR (plain)", `${f(results.redisIncrPerS)} ops/s`, "baseline"],
  ["redis-benchmark SET -P 16", `${f(results.redisSetP16PerS)} ops/s`, "baseline"],
  ["redis-benchmark INCR -P 16", `${f(results.redisIncrP16PerS)} ops/s`, "baseline"],
  [
    `usage events recorded (${MINERS}x${MODELS}, median of ${RUNS})`,
    `${f(results.recordEventsPerS)} events/s`,
    (results.recordEventsPerS ?? 0) >= 50_000 ? "target >= 50,000: met" : "target >= 50,000: MISSED",
  ],
  ...(withCluster
    ? [
        [
          "usage events recorded on a 3-master Redis Cluster (no persistence, as above)",
          `${f(results.recordEventsPerSCluster)} events/s`,
          (results.recordEventsPerSCluster ?? 0) >= 50_000
            ? "target >= 50,000: met"
            : "target >= 50,000: MISSED",
        ] as [string, string, string],
        [
          "  the same cluster with appendfsync always on every master",
          `${f(results.recordEventsPerSClusterFsync)} events/s`,
          "",
        ] as [string, string, string],
      ]
    : []),
  [
    `GetUsage 24 h, ${MINERS}x${MODELS} (in process)`,
    `${f(results.getUsage24hMs, 1)} ms`,
    (results.getUsage24hMs ?? 99) <= 50 ? "target <= 50 ms: met" : "target <= 50 ms: MISSED",
  ],
  [`GetUsage 30 min window (in process)`, `${f(results.getUsage30minMs, 1)} ms`, ""],
  [
    `GetUsage 24 h over signed gRPC`,
    `${f(results.getUsageGrpcMs, 1)} ms`,
    (results.getUsageGrpcMs ?? 99) <= 50 ? "target <= 50 ms: met" : "target <= 50 ms: MISSED",
  ],
  [`Redis bytes per (miner, model), ${HISTORY_BUCKETS} buckets`, `${f(results.bytesPerPair)} B`, ""],
  ["Redis bytes per (miner, model) per bucket", `${f(results.bytesPerPairBucket)} B`, ""],
  ["  extrapolated to a full 24 h of 1-min buckets", `${f(results.bytesPerPairFullDay)} B`, ""],
  [
    `Redis bytes per idempotency marker, (origin, seq) bit (${f(results.markerEvents)} events)`,
    `${f(results.bytesPerIdMarker, 2)} B`,
    "",
  ],
  [
    "Redis bytes per idempotency marker, fallback request-id set (24 h)",
    `${f(results.bytesPerIdMarkerFallback)} B`,
    "",
  ],
];
const w0 = Math.max(...rows.map((r) => r[0].length));
const w1 = Math.max(...rows.map((r) => r[1].length));
console.log(`\nUsage ledger benchmark${quick ? " (quick)" : ""}: medians, same machine, same run\n`);
for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
if (jsonFile !== undefined) writeFileSync(jsonFile, `${JSON.stringify({ quick, ...results }, null, 2)}\n`);
