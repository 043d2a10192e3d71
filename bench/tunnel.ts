// Tunnel benchmark (npm run bench:tunnel [-- --quick] [-- --json out.json]).
//
// Measures, router side, with the far side in a child process (bench/tunnel-peer.ts):
//   1. chunks/s relayed from one miner tunnel to readers, over gRPC and WS,
//      next to the raw grpc-js and raw `ws` tiny-message rates of the same run;
//   2. 1,000 concurrent in-flight requests on one tunnel (errors counted);
//   3. memory per idle tunnel with 2,000 tunnels on one router.
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Server as GrpcServer, ServerCredentials, type ServerDuplexStream } from "@grpc/grpc-js";
import { WebSocketServer } from "ws";
import { ChatRequest } from "../gen/tensorclaw/v1/chat.js";
import { addTunnelService, tunnelGrpcServerOptions } from "../router/tunnel/grpc.js";
import { TunnelHub } from "../router/tunnel/hub.js";
import type { TunnelDispatcher } from "../router/tunnel/types.js";
import { attachTunnelWs } from "../router/tunnel/ws.js";
import { startTunnelPeer } from "./tunnel-peer-process.js";

const QUICK = process.argv.includes("--quick");
const jsonAt = process.argv.indexOf("--json");
const JSON_OUT = jsonAt === -1 ? undefined : process.argv[jsonAt + 1];
const RUNS = QUICK ? 1 : 3;
const WINDOW_MS = QUICK ? 500 : 3_000;
const IDLE_TUNNELS = QUICK ? 200 : 2_000;
const IN_FLIGHT = 1_000;
/** Path of the bare bidi method the raw-grpc baseline uses. */
const RAW_GRPC_PATH = "/bench.Raw/Pump";

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const gone = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGKILL");
  await gone;
}

/** A hub behind real gRPC and HTTP servers on 127.0.0.1:0. */
async function startRouter() {
  const hub = new TunnelHub({
    routerId: "bench-router",
    timings: { helloTimeoutMs: 60_000 },
    // One peer process plays a whole fleet (200 idle tunnels of one hotkey, from one address):
    // the bench measures the tunnel itself, so the hub's per-peer caps are lifted.
    limits: {
      maxTunnelsPerHotkey: 100_000,
      maxPendingHandshakesPerAddress: 100_000,
      helloChecksPerSecond: 100_000,
    },
  });
  const grpc = new GrpcServer(tunnelGrpcServerOptions({ maxMessageBytes: hub.timings.maxMessageBytes }));
  addTunnelService(grpc, hub);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpc.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const http = createServer();
  const ws = attachTunnelWs(http, hub, { maxMessageBytes: hub.timings.maxMessageBytes });
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const httpPort = (http.address() as AddressInfo).port;
  return {
    hub,
    args: ["--grpc", `127.0.0.1:${grpcPort}`, "--ws", `ws://127.0.0.1:${httpPort}/v1/tunnel`],
    close: async () => {
      hub.close();
      ws.close();
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
      grpc.forceShutdown();
    },
  };
}

async function waitSessions(hub: TunnelDispatcher, n: number): Promise<void> {
  while (hub.sessions().length < n) await sleep(10);
}

const CHAT = ChatRequest.fromPartial({ messages: [{ role: "user", content: "bench" }], maxTokens: 100_000 });

/** Chunks/s read by `concurrency` readers that keep re-dispatching, over one window. */
async function relayRate(transport: "grpc" | "ws"): Promise<{ rate: number; errors: number }> {
  const router = await startRouter();
  const concurrency = 16;
  const child = await startTunnelPeer([
    "--role",
    "miner",
    "--transport",
    transport,
    ...router.args,
    "--chunks",
    "20000",
    "--concurrency",
    String(concurrency),
  ]);
  try {
    await waitSessions(router.hub, 1);
    const sessionId = router.hub.sessions()[0]?.sessionId ?? "";
    let chunks = 0;
    let errors = 0;
    let counting = false;
    let running = true;
    const reader = async (): Promise<void> => {
      while (running) {
        const call = router.hub.dispatch(sessionId, "bench", CHAT, { deadlineMs: 60_000 });
        for await (const e of call.events) {
          if (e.type === "chunk") {
            if (counting) chunks++;
          } else if (e.type === "error" && running) errors++;
          if (!running) {
            call.cancel("bench over");
            break;
          }
        }
      }
    };
    const readers = Array.from({ length: concurrency }, reader);
    await sleep(300); // warm-up: JIT and TCP windows
    counting = true;
    const t0 = performance.now();
    await sleep(WINDOW_MS);
    counting = false;
    const rate = chunks / ((performance.now() - t0) / 1000);
    running = false;
    await Promise.all(readers);
    return { rate, errors };
  } finally {
    await stop(child);
    await router.close();
  }
}

/** 1,000 requests in flight at once on one tunnel; every one must end with usage. */
async function manyInFlight(transport: "grpc" | "ws"): Promise<{ ms: number; errors: number; peak: number }> {
  const router = await startRouter();
  const child = await startTunnelPeer([
    "--role",
    "miner",
    "--transport",
    transport,
    ...router.args,
    "--chunks",
    "50",
    "--concurrency",
    String(IN_FLIGHT),
  ]);
  try {
    await waitSessions(router.hub, 1);
    const sessionId = router.hub.sessions()[0]?.sessionId ?? "";
    const t0 = performance.now();
    const calls = Array.from({ length: IN_FLIGHT }, () =>
      router.hub.dispatch(sessionId, "bench", CHAT, { deadlineMs: 60_000 }),
    );
    const peak = router.hub.sessions()[0]?.inFlight ?? 0;
    let errors = 0;
    await Promise.all(
      calls.map(async (c) => {
        let chunks = 0;
        let ok = false;
        for await (const e of c.events) {
          if (e.type === "chunk") chunks++;
          else if (e.type === "usage") ok = chunks === 50;
        }
        if (!ok) errors++;
      }),
    );
    return { ms: performance.now() - t0, errors, peak };
  } finally {
    await stop(child);
    await router.close();
  }
}

function heapNow(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}

/** Router-side heap per idle tunnel with IDLE_TUNNELS open. */
async function idleMemory(
  transport: "grpc" | "ws",
): Promise<{ bytesPerTunnel: number; rssPerTunnel: number }> {
  const router = await startRouter();
  try {
    const heap0 = heapNow();
    const rss0 = process.memoryUsage().rss;
    const child = await startTunnelPeer([
      "--role",
      "idle",
      "--transport",
      transport,
      ...router.args,
      "--count",
      String(IDLE_TUNNELS),
    ]);
    try {
      await waitSessions(router.hub, IDLE_TUNNELS);
      await sleep(200);
      const heap1 = heapNow();
      const rss1 = process.memoryUsage().rss;
      return { bytesPerTunnel: (heap1 - heap0) / IDLE_TUNNELS, rssPerTunnel: (rss1 - rss0) / IDLE_TUNNELS };
    } finally {
      await stop(child);
    }
  } finally {
    await router.close();
  }
}

/** Tiny messages/s received from a plain `ws` client (no TensorClaw code involved). */
async function rawWsRate(): Promise<number> {
  const http = createServer();
  const wss = new WebSocketServer({ server: http, perMessageDeflate: false });
  let n = 0;
  wss.on("connection", (ws) => ws.on("message", () => n++));
  await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
  const port = (http.address() as AddressInfo).port;
  const child = await startTunnelPeer(["--role", "raw-ws", "--url", `ws://127.0.0.1:${port}/`]);
  try {
    await sleep(300);
    const n0 = n;
    const t0 = performance.now();
    await sleep(WINDOW_MS);
    return (n - n0) / ((performance.now() - t0) / 1000);
  } finally {
    await stop(child);
    for (const c of wss.clients) c.terminate();
    wss.close();
    http.closeAllConnections();
    await new Promise<void>((r) => http.close(() => r()));
  }
}

/** Tiny messages/s received on a plain grpc-js bidi stream (one message per write, no batching). */
async function rawGrpcRate(): Promise<number> {
  const server = new GrpcServer();
  let n = 0;
  server.addService(
    {
      pump: {
        path: RAW_GRPC_PATH,
        requestStream: true,
        responseStream: true,
        requestDeserialize: (b: Buffer) => b,
        responseSerialize: (b: Buffer) => b,
        requestSerialize: (b: Buffer) => b,
        responseDeserialize: (b: Buffer) => b,
      },
    },
    {
      pump: (call: ServerDuplexStream<Buffer, Buffer>) => {
        call.on("data", () => n++);
        call.on("error", () => {});
      },
    },
  );
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
      e ? reject(e) : resolve(p),
    ),
  );
  const child = await startTunnelPeer([
    "--role",
    "raw-grpc",
    "--address",
    `127.0.0.1:${port}`,
    "--path",
    RAW_GRPC_PATH,
  ]);
  try {
    await sleep(300);
    const n0 = n;
    const t0 = performance.now();
    await sleep(WINDOW_MS);
    return (n - n0) / ((performance.now() - t0) / 1000);
  } finally {
    await stop(child);
    server.forceShutdown();
  }
}

async function main(): Promise<void> {
  const fmt = (x: number) => Math.round(x).toLocaleString("en-US");
  const relay: Record<string, number[]> = { grpc: [], ws: [], rawGrpc: [], rawWs: [] };
  let relayErrors = 0;
  for (let i = 0; i < RUNS; i++) {
    for (const t of ["grpc", "ws"] as const) {
      const r = await relayRate(t);
      relay[t]?.push(r.rate);
      relayErrors += r.errors;
    }
    relay.rawGrpc?.push(await rawGrpcRate());
    relay.rawWs?.push(await rawWsRate());
  }
  const inflight = { grpc: await manyInFlight("grpc"), ws: await manyInFlight("ws") };
  const idle = { grpc: await idleMemory("grpc"), ws: await idleMemory("ws") };

  const rows: [string, string, string][] = [
    ["tunnel chunks/s relayed, gRPC (target >= 200,000)", fmt(median(relay.grpc ?? [])), "chunks/s"],
    ["tunnel chunks/s relayed, WS (target >= 200,000)", fmt(median(relay.ws ?? [])), "chunks/s"],
    ["peer: raw grpc-js tiny messages, 1 per write", fmt(median(relay.rawGrpc ?? [])), "msgs/s"],
    ["peer: raw ws tiny messages", fmt(median(relay.rawWs ?? [])), "msgs/s"],
    ["relay errors", String(relayErrors), ""],
    [
      `${IN_FLIGHT} in flight, gRPC: time / errors / peak`,
      `${fmt(inflight.grpc.ms)} ms / ${inflight.grpc.errors} / ${inflight.grpc.peak}`,
      "",
    ],
    [
      `${IN_FLIGHT} in flight, WS: time / errors / peak`,
      `${fmt(inflight.ws.ms)} ms / ${inflight.ws.errors} / ${inflight.ws.peak}`,
      "",
    ],
    [
      `${IDLE_TUNNELS} idle tunnels, gRPC: heap / rss per tunnel`,
      `${fmt(idle.grpc.bytesPerTunnel)} / ${fmt(idle.grpc.rssPerTunnel)}`,
      "bytes",
    ],
    [
      `${IDLE_TUNNELS} idle tunnels, WS: heap / rss per tunnel`,
      `${fmt(idle.ws.bytesPerTunnel)} / ${fmt(idle.ws.rssPerTunnel)}`,
      "bytes",
    ],
  ];
  const w = Math.max(...rows.map((r) => r[0].length));
  console.log(
    `\ntunnel benchmark (${QUICK ? "quick" : "full"}: median of ${RUNS} run(s), ${WINDOW_MS} ms windows)\n`,
  );
  for (const [name, value, unit] of rows) console.log(`${name.padEnd(w)}  ${value.padStart(22)} ${unit}`);
  if (JSON_OUT !== undefined) {
    writeFileSync(
      JSON_OUT,
      `${JSON.stringify(
        {
          bench: "tunnel",
          quick: QUICK,
          runs: RUNS,
          windowMs: WINDOW_MS,
          chunksPerSec: { grpc: median(relay.grpc ?? []), ws: median(relay.ws ?? []) },
          peer: {
            rawGrpcMsgsPerSec: median(relay.rawGrpc ?? []),
            rawWsMsgsPerSec: median(relay.rawWs ?? []),
          },
          samples: relay,
          relayErrors,
          inFlight: { requests: IN_FLIGHT, ...inflight },
          idle: { tunnels: IDLE_TUNNELS, ...idle },
        },
        null,
        2,
      )}\n`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
