/**
 * Business API benchmark: one run, side by side, against the same fast fake
 * OpenAI backend (a node:http server in its own process):
 *
 *   1. non-streaming req/s at 50 connections: backend direct, through
 *      TensorClaw (router process + tunnel + `tensorclaw miner` process),
 *      the same with the miner on its default flags (concurrency learned from 8 up,
 *      where the main bench miner has 512), through the Portkey gateway
 *      (its own process, custom-host header);
 *   2. time to first token at 100 concurrent streams, direct vs TensorClaw,
 *      p50 / p99, and the difference ("added TTFT"). The backend paces these
 *      streams like a model does (first token after FIRST_TOKEN_MS, then one
 *      every TOKEN_GAP_MS), so the figure is the latency TensorClaw adds.
 *      Next to them, relays that do none of our work (two TCP relays, one
 *      and two bare HTTP proxies; see relayRole) show the floor that any
 *      two-process path has on this machine.
 *      The same at one stream at a time, against one bare proxy.
 *      The same measurement with an instant backend is reported too: there
 *      the machine is saturated and, by Little's law, TTFT is 100 streams
 *      divided by throughput, a second view of (1) rather than of latency.
 *
 * The load generator runs in its own process (keep-alive http.Agent, one
 * loop per connection). Each measurement is repeated and the median kept.
 *
 *   npm run bench:api [-- --quick] [-- --json out.json] [-- --profile DIR]
 *
 * `--profile DIR` runs the router and miner processes under `--cpu-prof`
 * and leaves their .cpuprofile files in DIR (open them in Chrome DevTools);
 * `--only throughput,ttft,single,saturated` runs some parts (the others print NaN);
 * `--transport ws` connects the miner over WebSocket instead of gRPC;
 * `--streams N` sets the concurrent streams of the TTFT runs (default 100).
 *
 * The same file is also the entry point of the helper processes
 * (`--role backend|relay|router|load`), so the benchmark is one file.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import {
  type AddressInfo,
  connect,
  createServer as createNetServer,
  type Server as NetServer,
} from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { Registry } from "prom-client";
import { silentLogger } from "../common/logger.js";
import { openRedis } from "../common/redis-connect.js";
import { DEFAULT_ENCODING, Encodings } from "../common/tokens/encodings.js";
import { ApiKeys, FileApiKeyStore } from "../router/api/keys.js";
import { EmbeddedRateLimiter } from "../router/api/rate-limiter.js";
import { API_DEFAULTS, startApiServer } from "../router/api/server.js";
import type { BillingStore } from "../router/billing/billing.js";
import { LedgerWithBilling } from "../router/billing/ledger-with-billing.js";
import { RedisBilling } from "../router/billing/redis.js";
import { ModelCatalogue } from "../router/catalogue/catalogue.js";
import { checkEntry, defaultEntry } from "../router/catalogue/entry.js";
import { tuneRouterHeap } from "../router/heap-tuning.js";
import { DEFAULT_LEDGER_OPTIONS } from "../router/ledger/ledger.js";
import { LEDGER_REDIS_OPTIONS, RedisLedger } from "../router/ledger/redis.js";
import { ApiMetrics } from "../router/metrics.js";
import { RoutingBook } from "../router/routing/book.js";
import { addTunnelService, tunnelGrpcServerOptions } from "../router/tunnel/grpc.js";
import { TunnelHub } from "../router/tunnel/hub.js";
import { attachTunnelWs } from "../router/tunnel/ws.js";
import type { UsageSink } from "../router/usage/event.js";
import { UsageRecorder } from "../router/usage/recorder.js";
import { newUsageOrigin, UsageSequencer } from "../router/usage/sequence.js";
import { startRedis, type TestRedis } from "../test/support/redis.js";
import { RawHttpConnection } from "./stream-client.js";
import { startTunnelPeer } from "./tunnel-peer-process.js";

/** `node --import` this to run TypeScript sources (see bin/loader.mjs). */
const TS_LOADER = new URL("../bin/register.mjs", import.meta.url).href;

const SELF = fileURLToPath(import.meta.url);
const ROOT = fileURLToPath(new URL("..", import.meta.url));
const MODEL = "bench-model";
const STREAM_TOKENS = 16;
/** Paced streams: time to the first content token, then between tokens (a fast model). */
const FIRST_TOKEN_MS = 20;
const TOKEN_GAP_MS = 10;
/** A prompt containing this gets its stream at once, unpaced. */
const INSTANT = "[instant]";
/**
 * Issue 4's throughput floor and issue 20's latency targets, each relative to
 * a peer measured in the same run (bench/report-specs.ts reads the same).
 */
const TARGETS = {
  tensorclawReqPerS: 5000,
  /** Non-streaming req/s with the miner's default flags, per Portkey req/s. */
  defaultFlagsPerPortkey: 8,
  /** Added TTFT at 100 paced streams per two bare proxies' added TTFT. */
  addedTtftPerFloorP50: 1.25,
  addedTtftPerFloorP99: 1,
  /** Added TTFT at 1 stream minus one bare proxy's, ms. */
  singleStreamOverFloorMs: 1,
} as const;

/** The main bench miner's limits: fixed and high enough that no request waits for capacity. */
const WIDE_OPEN = ["--max-concurrency", "512", "--fixed-concurrency"];

/** The parts of the benchmark `--only` can pick. */
const BENCH_PARTS = ["throughput", "ttft", "single", "saturated"] as const;
type BenchPart = (typeof BENCH_PARTS)[number];

/** The parts `--only a,b` names (every part without it). */
function benchParts(only: string | undefined): Set<BenchPart> {
  if (only === undefined) return new Set(BENCH_PARTS);
  const names = only.split(",");
  const bad = names.filter((n) => !(BENCH_PARTS as readonly string[]).includes(n));
  if (bad.length > 0) throw new Error(`--only takes ${BENCH_PARTS.join(", ")}, not ${bad.join(", ")}`);
  return new Set(names as BenchPart[]);
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

// ---------------------------------------------------------------- backend role

function backendRole(): void {
  const completion = (id: number) =>
    JSON.stringify({
      id: `chatcmpl-${id}`,
      object: "chat.completion",
      created: 1_700_000_000,
      model: MODEL,
      choices: [
        { index: 0, message: { role: "assistant", content: "Hello from the bench." }, finish_reason: "stop" },
      ],
      usage: { prompt_tokens: 9, completion_tokens: 5, total_tokens: 14 },
    });
  let seq = 0;
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => {
      if (req.method === "GET" && req.url?.startsWith("/v1/models")) {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ object: "list", data: [{ id: MODEL, object: "model", owned_by: "bench" }] }),
        );
        return;
      }
      const text = Buffer.concat(parts).toString("utf8");
      const body = JSON.parse(text || "{}") as { stream?: boolean };
      const id = ++seq;
      if (body.stream !== true) {
        const text = completion(id);
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
      const chunk = (delta: unknown, finish: string | null) =>
        `data: ${JSON.stringify({
          id: `chatcmpl-${id}`,
          object: "chat.completion.chunk",
          created: 1_700_000_000,
          model: MODEL,
          choices: [{ index: 0, delta, finish_reason: finish }],
        })}\n\n`;
      const tail = `${chunk({}, "stop")}data: ${JSON.stringify({ id: `chatcmpl-${id}`, object: "chat.completion.chunk", created: 1_700_000_000, model: MODEL, choices: [], usage: { prompt_tokens: 9, completion_tokens: STREAM_TOKENS, total_tokens: 9 + STREAM_TOKENS } })}\n\ndata: [DONE]\n\n`;
      const head = chunk({ role: "assistant", content: "" }, null);
      if (text.includes(INSTANT)) {
        let out = head;
        for (let i = 0; i < STREAM_TOKENS; i++) out += chunk({ content: ` tok${i}` }, null);
        res.end(out + tail);
        return;
      }
      res.write(head);
      let i = 0;
      const next = () => {
        if (res.destroyed) return;
        res.write(chunk({ content: ` tok${i}` }, null));
        if (++i < STREAM_TOKENS) setTimeout(next, TOKEN_GAP_MS);
        else res.end(tail);
      };
      setTimeout(next, FIRST_TOKEN_MS);
    });
  });
  server.keepAliveTimeout = 65_000;
  server.listen(0, "127.0.0.1", () => {
    process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
  });
}

// ------------------------------------------------------------------ relay role

/**
 * The floor any relay can reach on this machine, measured next to
 * TensorClaw: two processes in a row between client and backend (the shape
 * of router + miner) that do nothing of ours.
 *
 *   --kind tcp   copies bytes between two sockets: no HTTP at all;
 *   --kind http  a bare pass-through HTTP proxy (node:http server and a
 *                keep-alive node:http client) that forwards the body and
 *                writes each piece of the answer as it arrives. No auth,
 *                no JSON, no tunnel, no accounting.
 */
function relayRole(): void {
  const upstream = new URL(arg("upstream") ?? "");
  const announce = (server: NetServer) =>
    server.listen(0, "127.0.0.1", () => {
      process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
    });
  if (arg("kind") === "tcp") {
    announce(
      createNetServer((client) => {
        const up = connect({ host: upstream.hostname, port: Number(upstream.port), noDelay: true });
        client.setNoDelay(true);
        client.pipe(up).pipe(client);
        const close = () => {
          client.destroy();
          up.destroy();
        };
        client.on("error", close).on("close", close);
        up.on("error", close).on("close", close);
      }),
    );
    return;
  }
  const agent = new Agent({ keepAlive: true, maxSockets: 1024 });
  const server = createServer((req, res) => {
    const up = request(
      {
        agent,
        host: upstream.hostname,
        port: upstream.port,
        path: req.url,
        method: req.method,
        headers: {
          "content-type": "application/json",
          "content-length": req.headers["content-length"] ?? "0",
        },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, {
          "content-type": answer.headers["content-type"] ?? "application/octet-stream",
        });
        answer.on("data", (b: Buffer) => res.write(b));
        answer.on("end", () => res.end());
        answer.on("error", () => res.destroy());
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  server.keepAliveTimeout = 65_000;
  announce(server);
}

// ----------------------------------------------------------------- router role

/** The bench routes whatever its miner offers. */
const OPEN_CATALOGUE = ModelCatalogue.empty(true);

/** Prices of the billed router's model (USD per million tokens): any non-zero price meters the key. */
const BENCH_PRICES = { pricePromptPerM: 0.5, priceCompletionPerM: 1.5 };

/**
 * Where a bench router's usage goes. By default a counter (the API alone);
 * with `--redis URL` the router's real recorder and Redis ledger; with
 * `--billing on` as well, the key is metered (a hold per request, each
 * charge settled with its usage) on a priced model.
 */
async function benchLedger(keyId: string): Promise<{
  usage: UsageSink;
  billing: BillingStore | undefined;
  catalogue: ModelCatalogue;
}> {
  const url = arg("redis");
  if (url === undefined) {
    let events = 0;
    return { usage: { record: () => void events++ }, billing: undefined, catalogue: OPEN_CATALOGUE };
  }
  const client = await openRedis(url, LEDGER_REDIS_OPTIONS);
  await once(client, "ready");
  const prefix = `bench-${randomBytes(4).toString("hex")}:`;
  const ledger = new RedisLedger(client, DEFAULT_LEDGER_OPTIONS, prefix);
  if (arg("billing") !== "on") {
    const usage = new UsageSequencer(new UsageRecorder({ ledger }), newUsageOrigin());
    return { usage, billing: undefined, catalogue: OPEN_CATALOGUE };
  }
  const billing = new RedisBilling(client, DEFAULT_LEDGER_OPTIONS, prefix);
  const now = Date.now();
  await billing.configure(keyId, { metered: true, budgetDailyMicros: null }, now);
  const amountMicros = 1e12;
  await billing.credit({ id: "bench", keyId, amountMicros, note: "bench", source: "operator", atMs: now });
  const recorder = new UsageRecorder({ ledger: new LedgerWithBilling(ledger, billing) });
  const priced = checkEntry({ ...defaultEntry(MODEL), ...BENCH_PRICES });
  return {
    usage: new UsageSequencer(recorder, newUsageOrigin()),
    billing,
    catalogue: new ModelCatalogue([priced], true),
  };
}

async function routerRole(): Promise<void> {
  // As `tensorclaw router` does (router/main.ts): the bench measures the heap settings that ship.
  tuneRouterHeap();
  const hub = new TunnelHub({ routerId: "bench-router" });
  // `--count off`: no tokenizer loaded, so credit falls back to the bound by bytes (the baseline
  // of the router-side token count).
  const encodings = new Encodings();
  if (arg("count") !== "off") await encodings.load(DEFAULT_ENCODING);
  const grpc = new GrpcServer(tunnelGrpcServerOptions({ maxMessageBytes: hub.timings.maxMessageBytes }));
  addTunnelService(grpc, hub);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpc.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
      e === null ? resolve(p) : reject(e),
    ),
  );
  const dir = mkdtempSync(join(tmpdir(), "tc-bench-keys-"));
  const keys = new ApiKeys(new FileApiKeyStore(join(dir, "keys.json")));
  const { key, record } = await keys.create(
    "bench",
    { requestsPerMinute: 0, tokensPerMinute: 0 },
    Date.now(),
  );
  const registry = new Registry();
  const ledgered = await benchLedger(record.id);
  const api = await startApiServer(
    {
      dispatcher: hub,
      usage: ledgered.usage,
      ...(ledgered.billing === undefined ? {} : { billing: ledgered.billing }),
      limiter: new EmbeddedRateLimiter(),
      metrics: new ApiMetrics(registry, { sessions: () => hub.sessions() }),
      clock: Date.now,
      logger: silentLogger(),
      catalogue: () => ledgered.catalogue,
      encodings,
      options: { ...API_DEFAULTS, userSalt: "bench" },
      routing: new RoutingBook({ now: () => performance.now(), random: Math.random }),
      keys,
      registry,
      ready: () => true,
      // One key drives every connection of the load: the per-key cap would turn most into 429s.
      maxConcurrentPerKey: 0,
    },
    "127.0.0.1",
    0,
  );
  // The WebSocket tunnel shares the API's port, as in `tensorclaw router`.
  const ws = attachTunnelWs(api.server, hub, { maxMessageBytes: hub.timings.maxMessageBytes });
  process.stdout.write(`${JSON.stringify({ httpPort: api.port, grpcPort, key })}\n`);
  process.on("SIGTERM", () => {
    hub.close("bench over");
    ws.close();
    grpc.forceShutdown();
    void api.close().then(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(0);
    });
  });
  // Session count for the parent's readiness check, written when it changes: a write to the pipe
  // ten times a second cost the measured router ~0.3 ms of its loop each (seen in its CPU profile).
  let sessions = -1;
  setInterval(() => {
    const now = hub.sessions().length;
    if (now === sessions) return;
    sessions = now;
    process.stdout.write(`${JSON.stringify({ sessions: now })}\n`);
  }, 100).unref();
}

// ------------------------------------------------------------------- load role

interface LoadSpec {
  readonly url: string;
  readonly headers: Record<string, string>;
  readonly connections: number;
  readonly durationMs: number;
  readonly stream: boolean;
  /** Ask the backend for an unpaced stream. */
  readonly instant?: boolean;
}

interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly seconds: number;
  /** Time to first content token per streamed request, ms. */
  readonly ttftMs: number[];
  /** CPU the load generator used during the run (start-up excluded), ms; Node clients only. */
  readonly cpuMs?: number;
}

/** The chat request every load generator sends. */
function requestBody(spec: LoadSpec): string {
  return JSON.stringify({
    model: MODEL,
    messages: [
      { role: "user", content: `Say hello to the benchmark.${spec.instant === true ? ` ${INSTANT}` : ""}` },
    ],
    max_tokens: 64,
    ...(spec.stream ? { stream: true } : {}),
  });
}

/**
 * Streams: one bare-socket connection per stream, each running requests
 * back to back and timing the first content token (see stream-client.ts).
 */
async function streamLoad(spec: LoadSpec): Promise<LoadResult> {
  const url = new URL(spec.url);
  const body = requestBody(spec);
  const head = [
    `POST ${url.pathname} HTTP/1.1`,
    `host: ${url.host}`,
    "content-type: application/json",
    `content-length: ${Buffer.byteLength(body)}`,
    ...Object.entries(spec.headers).map(([k, v]) => `${k}: ${v}`),
  ];
  const request = Buffer.from(`${head.join("\r\n")}\r\n\r\n${body}`);
  let requests = 0;
  let errors = 0;
  const ttft: number[] = [];
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + spec.durationMs;
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (performance.now() < end) {
        let conn: RawHttpConnection | undefined;
        try {
          conn = await RawHttpConnection.open(url.hostname, Number(url.port));
          while (performance.now() < end) {
            const x = await conn.exchange(request);
            if (x.status !== 200) errors++;
            else requests++;
            if (x.firstContentMs !== undefined) ttft.push(x.firstContentMs);
          }
        } catch {
          errors++;
        } finally {
          conn?.close();
        }
      }
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  return {
    requests,
    errors,
    seconds: (performance.now() - start) / 1000,
    ttftMs: ttft,
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
}

async function loadRole(): Promise<void> {
  const spec = JSON.parse(arg("spec") ?? "{}") as LoadSpec;
  if (spec.stream) {
    process.stdout.write(`${JSON.stringify(await streamLoad(spec))}\n`);
    return;
  }
  const agent = new Agent({ keepAlive: true, maxSockets: spec.connections });
  const url = new URL(spec.url);
  const body = requestBody(spec);
  let requests = 0;
  let errors = 0;
  const one = () =>
    new Promise<void>((resolve) => {
      const req = request(
        {
          agent,
          host: url.hostname,
          port: url.port,
          path: url.pathname,
          method: "POST",
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            ...spec.headers,
          },
        },
        (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) requests++;
            else errors++;
            resolve();
          });
          res.on("error", () => {
            errors++;
            resolve();
          });
        },
      );
      req.on("error", () => {
        errors++;
        resolve();
      });
      req.end(body);
    });
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  const end = start + spec.durationMs;
  await Promise.all(
    Array.from({ length: spec.connections }, async () => {
      while (performance.now() < end) await one();
    }),
  );
  const cpu = process.cpuUsage(cpu0);
  const result: LoadResult = {
    requests,
    errors,
    seconds: (performance.now() - start) / 1000,
    ttftMs: [],
    cpuMs: (cpu.user + cpu.system) / 1000,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  agent.destroy();
}

// ------------------------------------------------------------------ main

/** Miners the fleet variant adds to its router: with the measured one, a subnet's 256 uids. */
const FLEET_MINERS = 255;
/** Models each fleet miner offers (none of them the measured one). */
const FLEET_MODELS = 4;

/** Starts bench/tunnel-peer.ts's fleet on a router's tunnel endpoints; resolves once all are live. */
function fleetPeer(transport: "grpc" | "ws", endpoints: { grpc: string; ws: string }): Promise<ChildProcess> {
  return startTunnelPeer([
    ...["--role", "fleet", "--transport", transport, "--grpc", endpoints.grpc, "--ws", endpoints.ws],
    ...["--count", String(FLEET_MINERS), "--models", String(FLEET_MODELS)],
  ]);
}

/** Spawns a helper and resolves with its first JSON line on stdout. */
async function helper(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ child: ChildProcess; first: Record<string, unknown> }> {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let buf = "";
  const first = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const onData = (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl === -1) return;
      child.stdout?.off("data", onData);
      resolve(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
    };
    child.stdout?.on("data", onData);
    child.once("exit", (code) => reject(new Error(`${args.join(" ")} exited with ${String(code)}`)));
  });
  return { child, first };
}

/** Whether wrk (Debian package `wrk`) is on the PATH. */
const HAVE_WRK = spawnSync("wrk", ["--version"]).error === undefined;

/**
 * Non-streaming load with wrk, one thread: a C client costs the machine far
 * less per request than a Node one, leaving the two cores to the servers
 * being compared. Counts non-2xx answers and socket errors as errors.
 */
async function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), "tc-bench-wrk-"));
  const script = join(dir, "post.lua");
  const lua = (v: string) => JSON.stringify(v); // a JSON string literal is a valid Lua string literal here (ASCII)
  writeFileSync(
    script,
    [
      'wrk.method = "POST"',
      `wrk.body = ${lua(requestBody(spec))}`,
      'wrk.headers["Content-Type"] = "application/json"',
      ...Object.entries(spec.headers).map(([k, v]) => `wrk.headers[${lua(k)}] = ${lua(v)}`),
    ].join("\n"),
  );
  try {
    const child = spawn(
      "wrk",
      [
        "-t1",
        `-c${spec.connections}`,
        `-d${Math.max(1, Math.round(spec.durationMs / 1000))}s`,
        "-s",
        script,
        spec.url,
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    await once(child, "exit");
    const n = (re: RegExp) => Number(re.exec(out)?.[1] ?? 0);
    const total = n(/(\d+) requests in/);
    const seconds = n(/requests in ([\d.]+)s/) || spec.durationMs / 1000;
    const non2xx = n(/Non-2xx or 3xx responses: (\d+)/);
    const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
    const socketErrors = sock === null ? 0 : sock.slice(1).reduce((a, b) => a + Number(b), 0);
    if (total === 0) throw new Error(`wrk produced no result:\n${out}`);
    return { requests: total - non2xx, errors: non2xx + socketErrors, seconds, ttftMs: [] };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  if (!spec.stream && HAVE_WRK) return runWrk(spec);
  const child = spawn(
    process.execPath,
    ["--import", TS_LOADER, SELF, "--role", "load", "--spec", JSON.stringify(spec)],
    {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    },
  );
  let out = "";
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  await once(child, "exit");
  return JSON.parse(out.trim().split("\n").at(-1) ?? "{}") as LoadResult;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

function busyMedians(busy: Record<string, number[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(busy).map(([k, v]) => [k, median(v)]));
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

/** CPU time (user + system) a process has used, in ms; NaN where /proc is missing. */
function cpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, "utf8");
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

/** A TCP port that was free a moment ago (the system's choice for port 0). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function waitFor(check: () => Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function httpOk(url: string, headers: Record<string, string> = {}): Promise<boolean> {
  try {
    const r = await fetch(url, { headers });
    return r.ok;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  const quick = process.argv.includes("--quick");
  const jsonOut = arg("json");
  const rounds = quick ? 1 : 3;
  const durationMs = quick ? 1000 : 5000;
  const children: ChildProcess[] = [];
  const ts = ["--import", TS_LOADER];
  const profileDir = arg("profile");
  const transport = arg("transport") ?? "grpc";
  if (transport !== "grpc" && transport !== "ws") throw new Error("--transport is grpc or ws");
  const profile = profileDir === undefined ? [] : ["--cpu-prof", `--cpu-prof-dir=${profileDir}`];
  try {
    const backend = await helper([...ts, SELF, "--role", "backend"]);
    children.push(backend.child);
    const backendUrl = `http://127.0.0.1:${String(backend.first.port)}/v1`;

    // The floor of a two-process relay (see relayRole): two in a row of each kind, and one HTTP proxy.
    const relayUrls: Record<string, string> = {};
    const relayPids: Record<string, number | undefined> = {};
    for (const [name, kind, upstream] of [
      ["tcp1", "tcp", backendUrl],
      ["tcp2", "tcp", "tcp1"],
      ["http1", "http", backendUrl],
      ["http2", "http", "http1"],
    ] as const) {
      const url = relayUrls[upstream] ?? upstream;
      const relay = await helper([...ts, SELF, "--role", "relay", "--kind", kind, "--upstream", url]);
      children.push(relay.child);
      relayUrls[name] = `http://127.0.0.1:${String(relay.first.port)}/v1`;
      relayPids[name] = relay.child.pid;
    }

    const router = await helper([...profile, ...ts, SELF, "--role", "router"]);
    children.push(router.child);
    const routerUrl = `http://127.0.0.1:${String(router.first.httpPort)}/v1`;
    const key = String(router.first.key);
    let sessions = 0;
    router.child.stdout?.on("data", (d: Buffer) => {
      for (const line of d.toString().split("\n")) {
        if (line.startsWith('{"sessions"')) sessions = (JSON.parse(line) as { sessions: number }).sessions;
      }
    });

    /** A `tensorclaw miner` on router `r`; `limits` are its concurrency flags (none: the miner's defaults). */
    const startMiner = (r: typeof router, limits: string[], prof: string[]) =>
      spawn(
        process.execPath,
        [
          ...prof,
          join(ROOT, "bin/tensorclaw.js"),
          "miner",
          "--router",
          transport === "ws"
            ? `ws://127.0.0.1:${String(r.first.httpPort)}/v1/tunnel`
            : `grpc://127.0.0.1:${String(r.first.grpcPort)}`,
          "--transport",
          transport,
          "--backend",
          backendUrl,
          ...limits,
          "--log-level",
          "warn",
          // Router pins go to a throwaway folder, not the working directory's .tensorclaw.
          "--data-dir",
          mkdtempSync(join(tmpdir(), "tc-bench-miner-")),
        ],
        {
          cwd: ROOT,
          env: { ...process.env, TENSORCLAW_MNEMONIC: mnemonicGenerate() },
          stdio: ["ignore", "ignore", "inherit"],
        },
      );
    const miner = startMiner(router, WIDE_OPEN, profile);
    children.push(miner);
    await waitFor(async () => sessions > 0, "the miner's session");

    const parts = benchParts(arg("only"));
    const runs = (part: BenchPart) => parts.has(part);

    /** Another router process (with `args`) and its miner (with `limits`), once the miner's session is up. */
    const otherRouter = async (args: string[], what: string, limits = WIDE_OPEN) => {
      const r = await helper([...profile, ...ts, SELF, "--role", "router", ...args]);
      children.push(r.child);
      let up = 0;
      r.child.stdout?.on("data", (d: Buffer) => {
        for (const line of d.toString().split("\n")) {
          if (line.startsWith('{"sessions"')) up = (JSON.parse(line) as { sessions: number }).sessions;
        }
      });
      children.push(startMiner(r, limits, []));
      await waitFor(async () => up > 0, `the ${what} router's miner`);
      return {
        url: `http://127.0.0.1:${String(r.first.httpPort)}/v1/chat/completions`,
        headers: { authorization: `Bearer ${String(r.first.key)}` },
        pid: r.child.pid,
        tunnel: {
          grpc: `127.0.0.1:${String(r.first.grpcPort)}`,
          ws: `ws://127.0.0.1:${String(r.first.httpPort)}/v1/tunnel`,
        },
      };
    };
    type Target = { url: string; headers: Record<string, string> };
    const direct: Target = { url: `${backendUrl}/chat/completions`, headers: {} };
    const tensorclaw: Target = {
      url: `${routerUrl}/chat/completions`,
      headers: { authorization: `Bearer ${key}` },
    };
    const targets: Record<string, Target> = { direct, tensorclaw };
    // CPU ms per request of each server process, to show where the time goes.
    const procs: Record<string, number | undefined> = {
      backend: backend.child.pid,
      router: router.child.pid,
      miner: miner.pid,
      // The two bare proxies in the places of the router (the one clients call) and the miner.
      proxyFront: relayPids.http2,
      proxyBack: relayPids.http1,
    };
    // The throughput peers and variants are started only when throughput is measured.
    if (runs("throughput")) {
      // The miner's default flags (concurrency learned, from 8 up): what an operator gets without tuning.
      const defaults = await otherRouter([], "default-flags", []);
      // The same router without its own token count (credit bounded by bytes, as before the count
      // existed): the baseline of what counting costs, measured in the same run.
      const uncounted = await otherRouter(["--count", "off"], "uncounted");
      // Billing off and on, both recording into a real Redis ledger (the router's recorder): the
      // billed one meters its key on a priced model, so every request holds its worst case
      // before dispatch and settles its charge with its usage.
      const redisUrl = (await benchRedis()).url;
      const ledgered = await otherRouter(["--redis", redisUrl], "ledger");
      const billed = await otherRouter(["--redis", redisUrl, "--billing", "on"], "billed");
      // A subnet's worth of miners on one router (FLEET_MINERS more, idle, each its own hotkey
      // offering FLEET_MODELS other models): what a request costs must not grow with them.
      const fleet = await otherRouter([], "fleet");
      children.push(await fleetPeer(transport, fleet.tunnel));

      // A port the system just handed out (a random pick could land on one in use, and Portkey
      // would then exit while we waited for it).
      const portkeyPort = await freePort();
      const portkey = spawn(
        process.execPath,
        [
          join(ROOT, "node_modules/@portkey-ai/gateway/build/start-server.js"),
          `--port=${portkeyPort}`,
          "--headless",
        ],
        { cwd: ROOT, env: { ...process.env, NODE_ENV: "production" }, stdio: ["ignore", "ignore", "ignore"] },
      );
      children.push(portkey);
      const portkeyHeaders = {
        "x-portkey-provider": "openai",
        "x-portkey-custom-host": backendUrl,
        authorization: "Bearer bench",
      };
      await waitFor(() => httpOk(`http://127.0.0.1:${portkeyPort}/`), "the Portkey gateway");
      Object.assign(targets, {
        defaults: { url: defaults.url, headers: defaults.headers },
        uncounted: { url: uncounted.url, headers: uncounted.headers },
        ledgered: { url: ledgered.url, headers: ledgered.headers },
        billed: { url: billed.url, headers: billed.headers },
        fleet: { url: fleet.url, headers: fleet.headers },
        portkey: { url: `http://127.0.0.1:${portkeyPort}/v1/chat/completions`, headers: portkeyHeaders },
        // The floor of throughput: two bare HTTP proxies in the places of router and miner.
        twoProxies: { url: `${relayUrls.http2}/chat/completions`, headers: {} },
      });
      Object.assign(procs, {
        portkey: portkey.pid,
        defaultsRouter: defaults.pid,
        ledgerRouter: ledgered.pid,
        billedRouter: billed.pid,
        fleetRouter: fleet.pid,
        redis: redisPid(redisUrl),
      });
    }
    // Warm-up: JIT, connection pools, the tunnel (skipped by a quick run: each load process costs ~2 s to start).
    if (!quick)
      for (const t of Object.values(targets))
        await runLoad({ ...t, connections: 10, durationMs: 700, stream: false });

    const throughputNames = [
      "direct",
      "tensorclaw",
      "defaults",
      "uncounted",
      "ledgered",
      "billed",
      "fleet",
      "portkey",
      "twoProxies",
    ];
    const rps: Record<string, number[]> = Object.fromEntries(throughputNames.map((k) => [k, []]));
    const errs: Record<string, number> = Object.fromEntries(throughputNames.map((k) => [k, 0]));
    const cpuPerReq: Record<string, Record<string, number[]>> = Object.fromEntries(
      throughputNames.map((k) => [k, {}]),
    );
    for (let r = 0; r < (runs("throughput") ? rounds : 0); r++) {
      // Every other round in reverse order, so no target always runs right after another.
      const order = Object.entries(targets);
      if (r % 2 === 1) order.reverse();
      for (const [name, t] of order) {
        const before = Object.fromEntries(Object.entries(procs).map(([k, pid]) => [k, cpuMs(pid)]));
        const res = await runLoad({ ...t, connections: 50, durationMs, stream: false });
        rps[name]?.push(res.requests / res.seconds);
        errs[name] = (errs[name] ?? 0) + res.errors;
        for (const [k, pid] of Object.entries(procs)) {
          const per = (cpuMs(pid) - (before[k] ?? 0)) / Math.max(1, res.requests);
          const row = cpuPerReq[name] as Record<string, number[]>;
          row[k] = [...(row[k] ?? []), per];
        }
      }
    }
    const cpuCell = (name: string, proc: string) => {
      const v = median(cpuPerReq[name]?.[proc] ?? []);
      return v >= 0.0005 ? v.toFixed(3).padStart(8) : "       -";
    };

    // Time to first token at 100 streams and at 1: paced (the targets) and, at 100, instant
    // (saturated, for context). Per run, the share of one core each process used (the load
    // generator's without its start-up).
    type Busy = Record<string, number[]>;
    // No streaming peer: Portkey 1.15.2 on Node 20 answers every streamed request
    // with 500 ("TypeError: immutable" in its header rewrite; its issues #1389, #1550).
    type Ttft = Record<string, { p50: number[]; p99: number[]; busy: Busy }>;
    const ttftRuns = async (part: "ttft" | "single" | "saturated"): Promise<Ttft> => {
      const instant = part === "saturated";
      // Paced runs also measure the bare proxies: the floor of a relay here.
      const relays = (...names: string[]) =>
        Object.fromEntries(names.map((n) => [n, { url: `${relayUrls[n]}/chat/completions`, headers: {} }]));
      const streamTargets: Record<string, Target> =
        part === "saturated"
          ? { direct, tensorclaw }
          : { direct, ...relays("tcp2", "http1", "http2"), tensorclaw };
      const out: Ttft = Object.fromEntries(
        Object.keys(streamTargets).map((name) => [name, { p50: [], p99: [], busy: {} }]),
      );
      const connections = part === "single" ? 1 : Number(arg("streams") ?? 100);
      // One stream makes a request per ~170 ms: a quick run's window still needs a few.
      const windowMs = part === "single" ? Math.max(durationMs, 2000) : durationMs;
      for (let r = 0; r < (runs(part) ? rounds : 0); r++) {
        // Every other round in reverse order, so no target always runs right after another.
        const order = Object.entries(streamTargets);
        if (r % 2 === 1) order.reverse();
        for (const [name, target] of order) {
          const before = Object.fromEntries(Object.entries(procs).map(([k, pid]) => [k, cpuMs(pid)]));
          const res = await runLoad({ ...target, connections, durationMs: windowMs, stream: true, instant });
          const o = out[name] as Ttft[string];
          o.p50.push(percentile(res.ttftMs, 50));
          o.p99.push(percentile(res.ttftMs, 99));
          const wallMs = res.seconds * 1000;
          for (const [k, pid] of Object.entries(procs))
            o.busy[k] = [...(o.busy[k] ?? []), (100 * (cpuMs(pid) - (before[k] ?? 0))) / wallMs];
          o.busy.load = [...(o.busy.load ?? []), (100 * (res.cpuMs ?? Number.NaN)) / wallMs];
          errs[name] = (errs[name] ?? 0) + res.errors;
        }
      }
      return out;
    };
    const ttft = await ttftRuns("ttft");
    const single = await ttftRuns("single");
    const saturated = await ttftRuns("saturated");
    const at = (run: Ttft, name: string, p: "p50" | "p99") => median(run[name]?.[p] ?? []);
    const d50 = at(ttft, "direct", "p50");
    const d99 = at(ttft, "direct", "p99");
    const t50 = at(ttft, "tensorclaw", "p50");
    const t99 = at(ttft, "tensorclaw", "p99");
    const relay = (name: string) => ({
      p50: at(ttft, name, "p50") - d50,
      p99: at(ttft, name, "p99") - d99,
    });
    /** What relays that do none of our work add in the same run (see relayRole). */
    const floor = {
      twoTcpRelays: relay("tcp2"),
      oneHttpProxy: relay("http1"),
      twoHttpProxies: relay("http2"),
    };
    /** The same at one stream: TensorClaw's and the relays' added TTFT over direct. */
    const addedAtOne = (name: string) => ({
      p50: at(single, name, "p50") - at(single, "direct", "p50"),
      p99: at(single, name, "p99") - at(single, "direct", "p99"),
    });
    const one = {
      direct: { p50: at(single, "direct", "p50"), p99: at(single, "direct", "p99") },
      added: addedAtOne("tensorclaw"),
      floor: { oneHttpProxy: addedAtOne("http1"), twoHttpProxies: addedAtOne("http2") },
    };
    const s = {
      d50: at(saturated, "direct", "p50"),
      d99: at(saturated, "direct", "p99"),
      t50: at(saturated, "tensorclaw", "p50"),
      t99: at(saturated, "tensorclaw", "p99"),
    };
    const summary = {
      rounds,
      durationMs,
      loadGenerator: HAVE_WRK ? "wrk, 1 thread" : "a Node keep-alive client (install wrk for a lighter one)",
      nonStreamingReqPerS: {
        direct: median(rps.direct ?? []),
        tensorclaw: median(rps.tensorclaw ?? []),
        /** The same with its miner on default flags (concurrency learned, from 8 up). */
        tensorclawDefaultFlags: median(rps.defaults ?? []),
        /** The same router without its own token count (credit bounded by bytes). */
        tensorclawUncounted: median(rps.uncounted ?? []),
        /** Recording into a Redis ledger, billing off (an unmetered key). */
        billingOff: median(rps.ledgered ?? []),
        /** The same with the key metered on a priced model: a hold and a settled charge per request. */
        billingOn: median(rps.billed ?? []),
        /** The `tensorclaw` setup with FLEET_MINERS more miners connected to its router (fleetPeer). */
        tensorclawFleet: median(rps.fleet ?? []),
        portkey: median(rps.portkey ?? []),
        /** Two bare HTTP proxies in a row (relayRole): what any two-process relay reaches here. */
        twoHttpProxies: median(rps.twoProxies ?? []),
      },
      fleet: { miners: FLEET_MINERS, modelsEach: FLEET_MODELS },
      pacing: { firstTokenMs: FIRST_TOKEN_MS, tokenGapMs: TOKEN_GAP_MS, tokens: STREAM_TOKENS },
      ttftMs: {
        direct: { p50: d50, p99: d99 },
        tensorclaw: { p50: t50, p99: t99 },
      },
      addedTtftMs: { p50: t50 - d50, p99: t99 - d99 },
      /** Added TTFT of relays that do none of our work, same run: the floor on this machine. */
      floorAddedTtftMs: floor,
      /** One paced stream at a time: direct TTFT, TensorClaw's and the bare proxies' added TTFT. */
      singleStreamTtftMs: one,
      saturatedTtftMs: {
        direct: { p50: s.d50, p99: s.d99 },
        tensorclaw: { p50: s.t50, p99: s.t99 },
      },
      cpuMsPerRequest: cpuPerReq,
      pacedStreamsCpuPercent: {
        direct: busyMedians(ttft.direct?.busy ?? {}),
        tensorclaw: busyMedians(ttft.tensorclaw?.busy ?? {}),
        /** The floor: the two bare proxies' own CPU (`proxyFront`, `proxyBack`). */
        twoHttpProxies: busyMedians(ttft.http2?.busy ?? {}),
      },
      errors: errs,
      targets: TARGETS,
    };
    const f = (n: number, digits = 0) => n.toFixed(digits).padStart(10);
    const lines = [
      `Business API benchmark (${rounds} round(s) × ${durationMs} ms, medians; 2-core machine, all processes local)`,
      `non-streaming load from ${summary.loadGenerator}; streams from a bare-socket Node client that times the first token`,
      "",
      "non-streaming, 50 connections          req/s",
      `  backend direct                   ${f(summary.nonStreamingReqPerS.direct)}`,
      `  TensorClaw (router+tunnel+miner) ${f(summary.nonStreamingReqPerS.tensorclaw)}   target >= ${TARGETS.tensorclawReqPerS}`,
      `    miner on its default flags     ${f(summary.nonStreamingReqPerS.tensorclawDefaultFlags)}   per Portkey = ${(summary.nonStreamingReqPerS.tensorclawDefaultFlags / summary.nonStreamingReqPerS.portkey).toFixed(1)} (target >= ${TARGETS.defaultFlagsPerPortkey})`,
      `    without the router's token count ${f(summary.nonStreamingReqPerS.tensorclawUncounted)}   counted / uncounted = ${(summary.nonStreamingReqPerS.tensorclaw / summary.nonStreamingReqPerS.tensorclawUncounted).toFixed(2)} (target >= 0.90)`,
      `    recording into Redis, billing off ${f(summary.nonStreamingReqPerS.billingOff)}`,
      `    recording into Redis, billing on  ${f(summary.nonStreamingReqPerS.billingOn)}   on / off = ${(summary.nonStreamingReqPerS.billingOn / summary.nonStreamingReqPerS.billingOff).toFixed(2)} (target >= 0.90)`,
      `    with ${FLEET_MINERS} more miners connected ${f(summary.nonStreamingReqPerS.tensorclawFleet)}   per one miner = ${(summary.nonStreamingReqPerS.tensorclawFleet / summary.nonStreamingReqPerS.tensorclaw).toFixed(2)}`,
      `  Portkey gateway                  ${f(summary.nonStreamingReqPerS.portkey)}`,
      `  two bare HTTP proxies (floor)    ${f(summary.nonStreamingReqPerS.twoHttpProxies)}   per Portkey = ${(summary.nonStreamingReqPerS.twoHttpProxies / summary.nonStreamingReqPerS.portkey).toFixed(1)}`,
      "",
      `time to first token, 100 paced streams (${FIRST_TOKEN_MS} ms, then a token per ${TOKEN_GAP_MS} ms)`,
      "                                       p50 ms     p99 ms",
      `  backend direct                   ${f(d50, 2)} ${f(d99, 2)}`,
      `  TensorClaw                       ${f(t50, 2)} ${f(t99, 2)}`,
      `  added by TensorClaw              ${f(t50 - d50, 2)} ${f(t99 - d99, 2)}`,
      "  added by relays doing none of our work (the floor here):",
      `    two TCP relays (bytes only)    ${f(floor.twoTcpRelays.p50, 2)} ${f(floor.twoTcpRelays.p99, 2)}`,
      `    one bare HTTP proxy            ${f(floor.oneHttpProxy.p50, 2)} ${f(floor.oneHttpProxy.p99, 2)}`,
      `    two bare HTTP proxies          ${f(floor.twoHttpProxies.p50, 2)} ${f(floor.twoHttpProxies.p99, 2)}`,
      `  TensorClaw / two bare proxies    ${f((t50 - d50) / floor.twoHttpProxies.p50, 2)} ${f((t99 - d99) / floor.twoHttpProxies.p99, 2)}   target <= ${TARGETS.addedTtftPerFloorP50} / ${TARGETS.addedTtftPerFloorP99}`,
      "",
      "time to first token, 1 paced stream                 p50 ms     p99 ms",
      `  backend direct                   ${f(one.direct.p50, 2)} ${f(one.direct.p99, 2)}`,
      `  added by TensorClaw              ${f(one.added.p50, 2)} ${f(one.added.p99, 2)}`,
      `  added by one bare HTTP proxy     ${f(one.floor.oneHttpProxy.p50, 2)} ${f(one.floor.oneHttpProxy.p99, 2)}`,
      `  added by two bare HTTP proxies   ${f(one.floor.twoHttpProxies.p50, 2)} ${f(one.floor.twoHttpProxies.p99, 2)}`,
      `  TensorClaw - one bare proxy      ${f(one.added.p50 - one.floor.oneHttpProxy.p50, 2)} ${f(one.added.p99 - one.floor.oneHttpProxy.p99, 2)}   target p50 <= ${TARGETS.singleStreamOverFloorMs}`,
      "",
      "CPU % of one core during the paced streams  backend   router    miner     load",
      ...(
        [
          ["direct", "router", "miner"],
          ["tensorclaw", "router", "miner"],
          // The proxies sit where router and miner do: the front one takes the client's call.
          ["twoHttpProxies", "proxyFront", "proxyBack"],
        ] as const
      ).map(([n, front, back]) => {
        const b = summary.pacedStreamsCpuPercent[n];
        const cell = (k: string) =>
          Number.isFinite(b[k]) ? (b[k] as number).toFixed(0).padStart(8) : "       -";
        const label = n === "twoHttpProxies" ? "two bare HTTP proxies (in their places)" : n;
        return `  ${label.padEnd(41)}${cell("backend")} ${cell(front)} ${cell(back)} ${cell("load")}`;
      }),
      "",
      "time to first token, 100 instant streams (CPU-bound: 100 / throughput)",
      `  backend direct                   ${f(s.d50, 2)} ${f(s.d99, 2)}`,
      `  TensorClaw                       ${f(s.t50, 2)} ${f(s.t99, 2)}`,
      "",
      "CPU ms per request (non-streaming)  backend   router    miner  portkey",
      ...(["direct", "tensorclaw", "portkey"] as const).map(
        (n) =>
          `  ${n.padEnd(32)}${cpuCell(n, "backend")} ${cpuCell(n, "router")} ${cpuCell(n, "miner")} ${cpuCell(n, "portkey")}`,
      ),
      `  two bare HTTP proxies           ${cpuCell("twoProxies", "backend")} ${cpuCell("twoProxies", "proxyFront")} ${cpuCell("twoProxies", "proxyBack")}        -   (front, back in router's, miner's columns)`,
      "",
      "CPU ms per request, Redis ledger      router    redis",
      `  billing off                     ${cpuCell("ledgered", "ledgerRouter")} ${cpuCell("ledgered", "redis")}`,
      `  billing on                      ${cpuCell("billed", "billedRouter")} ${cpuCell("billed", "redis")}`,
      `CPU ms per request, router with ${FLEET_MINERS} more miners ${cpuCell("fleet", "fleetRouter")}`,
      "",
      `errors (non-200 or failed): ${JSON.stringify(errs)}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    if (jsonOut !== undefined) writeFileSync(jsonOut, `${JSON.stringify(summary, null, 2)}\n`);
  } finally {
    for (const c of children.reverse()) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill("SIGTERM");
        await Promise.race([once(c, "exit"), new Promise((r) => setTimeout(r, 2000))]);
        if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
      }
    }
    await redisServer?.stop();
  }
}

/** The pid of the redis-server listening at `url` (for its CPU time), or undefined. */
function redisPid(url: string): number | undefined {
  const port = new URL(url).port;
  const r = spawnSync("pgrep", ["-f", `redis-server .*:${port}`], { encoding: "utf8" });
  const pid = Number((r.stdout ?? "").trim().split("\n")[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** The private redis-server of the ledger and billing routers, started on first use. */
let redisServer: TestRedis | undefined;
async function benchRedis(): Promise<TestRedis> {
  redisServer ??= await startRedis();
  return redisServer;
}

const USAGE = `usage: npm run bench:api [-- options]
  --quick              one short round of each measurement
  --json FILE          also write the figures as JSON
  --profile DIR        run the router and the miner under --cpu-prof, profiles left in DIR
  --only PART[,PART]   throughput, ttft (100 paced streams), single (1 paced stream) or
                       saturated (100 instant streams); the others print NaN
  --transport grpc|ws  the miner's tunnel (default grpc)
  --streams N          concurrent streams of the TTFT runs (default 100)
`;

const role = arg("role");
if (process.argv.includes("--help")) process.stdout.write(USAGE);
else if (role === "backend") backendRole();
else if (role === "router") await routerRole();
else if (role === "relay") relayRole();
else if (role === "load") await loadRole();
else await main();
