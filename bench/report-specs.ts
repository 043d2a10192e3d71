// What `npm run bench` runs and how each benchmark's `--json` output becomes
// report rows: the figure, the target the issue set for it, and the peer or
// baseline the same benchmark measured in the same run.
//
// Targets are written here once, from the issues that defined them (tunnel:
// issue 3, Business API: issue 4, its latency and default-flags rows: issue
// 20, ledger: issue 5, validator: issue 6,
// start-up: the task "a CLI that starts at once", audit: issue 15, in
// report-specs-audit.ts). A field that is missing or not a finite number
// makes the benchmark count as failed: that is how a benchmark whose output
// drifted is caught.

import { atLeast, atMost, none, num, type ReportRow, row } from "./report-row.js";
import { AUDIT_NOTES, auditRows } from "./report-specs-audit.js";

export type { PeerFigure, ReportRow, Target } from "./report-row.js";
export { meets, num, ShapeError } from "./report-row.js";

/** A benchmark script and how to read its JSON. */
export interface BenchSpec {
  readonly name: string;
  /** Path from the repository root. */
  readonly script: string;
  /** One line on what it measures. */
  readonly summary: string;
  /** Turns the script's JSON into rows; throws {@link ShapeError} when a field is missing. */
  readonly rows: (json: unknown) => ReportRow[];
  /** How to read its figures (what they were measured against), shown under it in the report. */
  readonly notes?: readonly string[];
}

function tunnelRows(j: unknown): ReportRow[] {
  const tunnels = num(j, "idle.tunnels").toLocaleString("en-US");
  const inFlight = num(j, "inFlight.requests").toLocaleString("en-US");
  return [
    row("relayed chunks/s, one tunnel, gRPC", num(j, "chunksPerSec.grpc"), "chunks/s", atLeast(200_000), [
      { label: "raw grpc-js, 1 message per write", value: num(j, "peer.rawGrpcMsgsPerSec"), unit: "msgs/s" },
    ]),
    row("relayed chunks/s, one tunnel, WS", num(j, "chunksPerSec.ws"), "chunks/s", atLeast(200_000), [
      { label: "raw ws", value: num(j, "peer.rawWsMsgsPerSec"), unit: "msgs/s" },
    ]),
    row("relay errors", num(j, "relayErrors"), "", none),
    row(
      `${inFlight} requests in flight on one tunnel, gRPC: errors`,
      num(j, "inFlight.grpc.errors"),
      "",
      none,
    ),
    row(`${inFlight} requests in flight on one tunnel, gRPC: time`, num(j, "inFlight.grpc.ms"), "ms"),
    row(`${inFlight} requests in flight on one tunnel, WS: errors`, num(j, "inFlight.ws.errors"), "", none),
    row(`${inFlight} requests in flight on one tunnel, WS: time`, num(j, "inFlight.ws.ms"), "ms"),
    // Issue 3: "memory per idle tunnel reported (target <= 50 KB)"; the heap is
    // what the router holds per tunnel (RSS moves in allocator-sized steps).
    row(
      `router heap per idle tunnel (${tunnels} open), gRPC`,
      num(j, "idle.grpc.bytesPerTunnel"),
      "B",
      atMost(50_000),
    ),
    row(
      `router heap per idle tunnel (${tunnels} open), WS`,
      num(j, "idle.ws.bytesPerTunnel"),
      "B",
      atMost(50_000),
    ),
    row(`router RSS per idle tunnel (${tunnels} open), gRPC`, num(j, "idle.grpc.rssPerTunnel"), "B"),
    row(`router RSS per idle tunnel (${tunnels} open), WS`, num(j, "idle.ws.rssPerTunnel"), "B"),
  ];
}

/**
 * Added time to first token at 100 paced streams at percentile `p`, as a
 * multiple of what two bare HTTP proxies add in the same run (target `most`).
 */
function addedTtftRow(j: unknown, p: "p50" | "p99", most: number): ReportRow {
  const added = num(j, `addedTtftMs.${p}`);
  const floor = num(j, `floorAddedTtftMs.twoHttpProxies.${p}`);
  return row(
    `added time to first token at 100 paced streams, ${p}, / two bare HTTP proxies' (same run)`,
    added / floor,
    "x",
    atMost(most),
    [
      { label: "added by TensorClaw", value: added, unit: "ms" },
      { label: "by two bare HTTP proxies", value: floor, unit: "ms" },
      { label: "by two TCP relays", value: num(j, `floorAddedTtftMs.twoTcpRelays.${p}`), unit: "ms" },
      { label: `direct TTFT ${p}`, value: num(j, `ttftMs.direct.${p}`), unit: "ms" },
    ],
  );
}

function apiRows(j: unknown): ReportRow[] {
  const direct = num(j, "nonStreamingReqPerS.direct");
  return [
    row(
      "non-streaming req/s at 50 connections, router + tunnel + miner",
      num(j, "nonStreamingReqPerS.tensorclaw"),
      "req/s",
      atLeast(5_000),
      [
        { label: "Portkey gateway", value: num(j, "nonStreamingReqPerS.portkey"), unit: "req/s" },
        { label: "backend direct", value: direct, unit: "req/s" },
      ],
    ),
    // Issue 20: the miner as an operator starts it (concurrency learned, from 8 up), against Portkey.
    row(
      "non-streaming req/s at 50 connections, miner on its default flags / Portkey (same run)",
      num(j, "nonStreamingReqPerS.tensorclawDefaultFlags") / num(j, "nonStreamingReqPerS.portkey"),
      "x",
      atLeast(8),
      [
        {
          label: "default flags",
          value: num(j, "nonStreamingReqPerS.tensorclawDefaultFlags"),
          unit: "req/s",
        },
        { label: "Portkey gateway", value: num(j, "nonStreamingReqPerS.portkey"), unit: "req/s" },
        // The floor: two relays that do none of our work reach this many times Portkey here.
        {
          label: "two bare HTTP proxies / Portkey",
          value: num(j, "nonStreamingReqPerS.twoHttpProxies") / num(j, "nonStreamingReqPerS.portkey"),
          unit: "x",
        },
      ],
    ),
    row("failed requests, miner on its default flags", num(j, "errors.defaults"), "", none),
    // A subnet's 256 uids on one router: what a request costs must not grow with the miners connected.
    row(
      `non-streaming req/s with ${num(j, "fleet.miners")} more miners connected / with one (same run)`,
      num(j, "nonStreamingReqPerS.tensorclawFleet") / num(j, "nonStreamingReqPerS.tensorclaw"),
      "x",
      atLeast(0.9),
      [
        {
          label: `with ${num(j, "fleet.miners")} more miners (${num(j, "fleet.modelsEach")} other models each)`,
          value: num(j, "nonStreamingReqPerS.tensorclawFleet"),
          unit: "req/s",
        },
      ],
    ),
    row(
      "non-streaming req/s with the router's token count / without it (same run)",
      num(j, "nonStreamingReqPerS.tensorclaw") / num(j, "nonStreamingReqPerS.tensorclawUncounted"),
      "x",
      atLeast(0.9),
      [
        {
          label: "without the router's token count",
          value: num(j, "nonStreamingReqPerS.tensorclawUncounted"),
          unit: "req/s",
        },
      ],
    ),
    // Issue 20: added TTFT relative to the floor measured in the same run (two bare node:http
    // proxies in a row, the shape of router + miner doing none of our work).
    addedTtftRow(j, "p50", 1.25),
    addedTtftRow(j, "p99", 1),
    // Issue 20: one stream at a time, against one bare proxy plus 1 ms.
    row(
      "added time to first token at 1 paced stream, p50, minus one bare HTTP proxy's (same run)",
      num(j, "singleStreamTtftMs.added.p50") - num(j, "singleStreamTtftMs.floor.oneHttpProxy.p50"),
      "ms",
      atMost(1),
      [
        { label: "added by TensorClaw", value: num(j, "singleStreamTtftMs.added.p50"), unit: "ms" },
        {
          label: "added by one bare HTTP proxy",
          value: num(j, "singleStreamTtftMs.floor.oneHttpProxy.p50"),
          unit: "ms",
        },
        {
          label: "by two bare HTTP proxies",
          value: num(j, "singleStreamTtftMs.floor.twoHttpProxies.p50"),
          unit: "ms",
        },
        { label: "direct TTFT", value: num(j, "singleStreamTtftMs.direct.p50"), unit: "ms" },
      ],
    ),
    row(
      "added time to first token at 1 paced stream, p99, minus one bare HTTP proxy's (same run)",
      num(j, "singleStreamTtftMs.added.p99") - num(j, "singleStreamTtftMs.floor.oneHttpProxy.p99"),
      "ms",
      undefined,
      [
        { label: "added by TensorClaw", value: num(j, "singleStreamTtftMs.added.p99"), unit: "ms" },
        {
          label: "added by one bare HTTP proxy",
          value: num(j, "singleStreamTtftMs.floor.oneHttpProxy.p99"),
          unit: "ms",
        },
      ],
    ),
    // Where the two cores went during the paced streams (share of one core).
    row(
      "CPU of router + miner during the paced streams (100 % = one core)",
      num(j, "pacedStreamsCpuPercent.tensorclaw.router") + num(j, "pacedStreamsCpuPercent.tensorclaw.miner"),
      "%",
      undefined,
      [
        { label: "router", value: num(j, "pacedStreamsCpuPercent.tensorclaw.router"), unit: "%" },
        { label: "miner", value: num(j, "pacedStreamsCpuPercent.tensorclaw.miner"), unit: "%" },
        { label: "backend", value: num(j, "pacedStreamsCpuPercent.tensorclaw.backend"), unit: "%" },
        { label: "load generator", value: num(j, "pacedStreamsCpuPercent.tensorclaw.load"), unit: "%" },
        {
          label: "two bare HTTP proxies, same streams",
          value:
            num(j, "pacedStreamsCpuPercent.twoHttpProxies.proxyFront") +
            num(j, "pacedStreamsCpuPercent.twoHttpProxies.proxyBack"),
          unit: "%",
        },
      ],
    ),
    // Context for the two rows above: the backend there paces its streams like a
    // model; with an instant one the machine saturates and TTFT measures throughput.
    row(
      "TTFT at 100 instant streams (saturated), TensorClaw p50",
      num(j, "saturatedTtftMs.tensorclaw.p50"),
      "ms",
      undefined,
      [{ label: "direct p50", value: num(j, "saturatedTtftMs.direct.p50"), unit: "ms" }],
    ),
    // Throughput only counts 200s, so failed requests would otherwise hide.
    row("failed requests through TensorClaw", num(j, "errors.tensorclaw"), "", none, [
      { label: "direct", value: num(j, "errors.direct"), unit: "" },
      { label: "Portkey", value: num(j, "errors.portkey"), unit: "" },
    ]),
  ];
}

function ledgerRows(j: unknown): ReportRow[] {
  const buckets = num(j, "historyBuckets");
  return [
    row(
      "usage events recorded/s, one router process",
      num(j, "recordEventsPerS"),
      "events/s",
      atLeast(50_000),
      [
        { label: "redis-benchmark SET", value: num(j, "redisSetPerS"), unit: "ops/s" },
        { label: "SET -P 16", value: num(j, "redisSetP16PerS"), unit: "ops/s" },
      ],
    ),
    row(
      "usage events recorded/s, one router process, 3-master Redis Cluster (no persistence)",
      num(j, "recordEventsPerSCluster"),
      "events/s",
      atLeast(50_000),
      [
        { label: "single Redis, same run", value: num(j, "recordEventsPerS"), unit: "events/s" },
        {
          label: "cluster with appendfsync always",
          value: num(j, "recordEventsPerSClusterFsync"),
          unit: "events/s",
        },
      ],
    ),
    row("GetUsage 24 h, 256 miners x 10 models, in process", num(j, "getUsage24hMs"), "ms", atMost(50)),
    row("GetUsage 24 h, 256 miners x 10 models, signed gRPC", num(j, "getUsageGrpcMs"), "ms", atMost(50)),
    row(`Redis bytes per (miner, model), ${buckets} buckets`, num(j, "bytesPerPair"), "B"),
    row("Redis bytes per (miner, model), a full 24 h (extrapolated)", num(j, "bytesPerPairFullDay"), "B"),
    row("Redis bytes per idempotency marker ((origin, seq) bit)", num(j, "bytesPerIdMarker"), "B"),
    row(
      "Redis bytes per idempotency marker (fallback: request-id set)",
      num(j, "bytesPerIdMarkerFallback"),
      "B",
    ),
  ];
}

function validatorRows(j: unknown): ReportRow[] {
  return [
    row("scoring + weights, 256 uids", num(j, "scoring.medianMs"), "ms", atMost(10), [
      { label: "structuredClone of the inputs", value: num(j, "scoring.baselineMs"), unit: "ms" },
    ]),
    // Issue 6: the 8 s probe deadline plus 1 s.
    row("probe round, 256 miners, half never answer", num(j, "probeRound.medianMs"), "ms", atMost(9_000), [
      { label: "same round, all answer", value: num(j, "probeRound.baselineMs"), unit: "ms" },
    ]),
  ];
}

function promptCountRows(j: unknown): ReportRow[] {
  const turns = num(j, "turns");
  const conversations = num(j, "conversations");
  const chars = num(j, "lastTurnChars").toLocaleString("en-US");
  const afresh = (path: string) => [
    { label: "every message counted afresh", value: num(j, path), unit: "ms" },
  ];
  return [
    row(
      `router CPU to count a chat prompt, turn ${turns} of a conversation (${chars} chars), long messages remembered per key`,
      num(j, "memo.lastTurnMs"),
      "ms",
      undefined,
      afresh("fresh.lastTurnMs"),
    ),
    row(
      `router CPU to count ${conversations} conversations x ${turns} turns, long messages remembered per key`,
      num(j, "memo.totalMs"),
      "ms",
      undefined,
      afresh("fresh.totalMs"),
    ),
  ];
}

/** `--help` cases of bench/startup.ts: JSON key and the command line. */
const STARTUP_HELP: readonly (readonly [string, string])[] = [
  ["top", "tensorclaw --help"],
  ["router", "tensorclaw router --help"],
  ["routerTiers", "tensorclaw router tiers --help"],
  ["miner", "tensorclaw miner --help"],
  ["validator", "tensorclaw validator --help"],
  ["dev", "tensorclaw dev --help"],
  ["keys", "tensorclaw keys --help"],
];

function startupRows(j: unknown): ReportRow[] {
  const bare = { label: "node -e 0", value: num(j, "bareNode.medianMs"), unit: "ms" };
  return [
    // Task "a CLI that starts at once": help within 300 ms, the router serving within 1 s.
    ...STARTUP_HELP.map(([key, line]) =>
      row(`${line}, warm compile cache`, num(j, `help.${key}.medianMs`), "ms", atMost(300), [
        { label: "p90", value: num(j, `help.${key}.p90Ms`), unit: "ms" },
        { label: "min", value: num(j, `help.${key}.minMs`), unit: "ms" },
        bare,
      ]),
    ),
    row(
      "tensorclaw router until /healthz answers, warm compile cache",
      num(j, "routerServing.medianMs"),
      "ms",
      atMost(1_000),
      [
        { label: "p90", value: num(j, "routerServing.p90Ms"), unit: "ms" },
        { label: "min", value: num(j, "routerServing.minMs"), unit: "ms" },
        { label: "router CPU until then", value: num(j, "routerServing.cpuMedianMs"), unit: "ms" },
      ],
    ),
    row("tensorclaw --help, cold compile cache", num(j, "cold.helpMs"), "ms"),
    row("tensorclaw router until /healthz answers, cold compile cache", num(j, "cold.routerServingMs"), "ms"),
  ];
}

function consoleRows(j: unknown): ReportRow[] {
  const spreadPeers = (path: string) => [
    { label: "p90", value: num(j, `${path}.p90Ms`), unit: "ms" },
    { label: "min", value: num(j, `${path}.minMs`), unit: "ms" },
  ];
  return [
    // Issue 19: "total transfer for a page <= 200 KB".
    row("web console: page + assets sent, gzipped", num(j, "pageWeight.bytes"), "B", atMost(200 * 1024)),
    row(
      "web console, cold cache: first contentful paint",
      num(j, "cold.firstContentfulPaint.medianMs"),
      "ms",
      undefined,
      spreadPeers("cold.firstContentfulPaint"),
    ),
    row(
      "web console, cold cache: Network figures drawn",
      num(j, "cold.figuresDrawn.medianMs"),
      "ms",
      undefined,
      spreadPeers("cold.figuresDrawn"),
    ),
    row(
      "web console, warm cache: Network figures drawn",
      num(j, "warm.figuresDrawn.medianMs"),
      "ms",
      undefined,
      spreadPeers("warm.figuresDrawn"),
    ),
    row(
      "web console: esbuild bundle at router start-up",
      num(j, "build.medianMs"),
      "ms",
      undefined,
      spreadPeers("build"),
    ),
  ];
}

/** Every benchmark `npm run bench` runs, in order. */
export const BENCHES: readonly BenchSpec[] = [
  {
    name: "tunnel",
    script: "bench/tunnel.ts",
    summary: "router-side relay over one miner tunnel (gRPC and WS), 1,000 in flight, idle tunnel memory",
    rows: tunnelRows,
  },
  {
    name: "api",
    script: "bench/api.ts",
    summary: "Business API vs the same backend direct and vs the Portkey gateway",
    rows: apiRows,
  },
  {
    name: "ledger",
    script: "bench/ledger.ts",
    summary: "usage recording and GetUsage on a private local Redis, against redis-benchmark",
    rows: ledgerRows,
  },
  {
    name: "validator",
    script: "bench/validator.ts",
    summary: "scoring + weights for 256 uids and a 256-miner probe round",
    rows: validatorRows,
  },
  {
    name: "prompt-count",
    script: "bench/prompt-count.ts",
    summary:
      "the router's own count of chat prompts over long conversations, with and without remembering long messages",
    rows: promptCountRows,
  },
  {
    name: "audit",
    script: "bench/audit.ts",
    summary:
      "verification cost per audit against a demo-model reference, and probe overhead per miner per day at the defaults",
    rows: auditRows,
    notes: AUDIT_NOTES,
  },
  {
    name: "startup",
    script: "bench/startup.ts",
    summary: "CLI start: every --help, and the router until it serves; warm compile cache, one cold figure",
    rows: startupRows,
  },
  {
    name: "console",
    script: "bench/console.ts",
    summary:
      "web console in headless chromium: page weight, time to first render (cold and warm), bundle build",
    rows: consoleRows,
    notes: [
      "Times are from navigation start in the page (performance.now), against the router in the same process with no miners; the figures are drawn once /api/v1/network has answered.",
    ],
  },
];
