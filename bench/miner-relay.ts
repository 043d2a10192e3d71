// Miner relay benchmark (node --import ./bin/register.mjs bench/miner-relay.ts [--quick]).
//
// How fast one real miner (`tensorclaw miner`, a child process) relays token
// chunks from an OpenAI-compatible HTTP backend (another child process, the
// test backend streaming with no delay) to the router's tunnel hub (this
// process), over gRPC and over WS. Baseline, measured in the same run: this
// process reading the same backend directly (fetch + SSE parse + JSON parse),
// i.e. what any client of the backend pays before a miner adds anything.
// Prints medians of several runs; the machine has 2 cores and is noisy.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { ChatRequest } from "../gen/tensorclaw/v1/chat.js";
import { SseParser } from "../miner/backend/sse-parser.js";
import { addTunnelService, tunnelGrpcServerOptions } from "../router/tunnel/grpc.js";
import { TunnelHub } from "../router/tunnel/hub.js";
import { attachTunnelWs } from "../router/tunnel/ws.js";

/** `node --import` this to run TypeScript sources (see bin/loader.mjs). */
const TS_LOADER = new URL("../bin/register.mjs", import.meta.url).href;

const QUICK = process.argv.includes("--quick");
const RUNS = QUICK ? 1 : 5;
const TOKENS = 5000;
const CONCURRENCY = 16;
const CLI = fileURLToPath(new URL("../bin/tensorclaw.js", import.meta.url));
const BACKEND = fileURLToPath(new URL("./miner-relay-backend.ts", import.meta.url));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
}

async function startBackend(): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(process.execPath, ["--import", TS_LOADER, BACKEND, String(TOKENS)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const [line] = (await once(proc.stdout as NodeJS.ReadableStream, "data")) as [Buffer];
  return { url: line.toString().trim(), proc };
}

/** Baseline: read the backend's SSE directly, counting content chunks. */
async function direct(url: string): Promise<number> {
  const one = async () => {
    const res = await fetch(`${url}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "bench-model",
        stream: true,
        messages: [{ role: "user", content: "x" }],
      }),
    });
    const reader = res.body?.getReader();
    if (reader === undefined) throw new Error("no body");
    const parser = new SseParser();
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      for (const ev of parser.push(value)) {
        if (ev.data === "[DONE]") continue;
        const doc = JSON.parse(ev.data) as { choices?: { delta?: { content?: string } }[] };
        if (doc.choices?.[0]?.delta?.content) n++;
      }
    }
    return n;
  };
  const t0 = performance.now();
  const counts = await Promise.all(Array.from({ length: CONCURRENCY }, one));
  return counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000);
}

/** Through the miner: the hub dispatches, the miner relays from the backend. */
async function viaMiner(hub: TunnelHub, sessionId: string): Promise<{ rate: number; errors: number }> {
  let errors = 0;
  const one = async (i: number) => {
    const chat = ChatRequest.fromPartial({
      messages: [{ role: "user", content: `x ${i}` }],
      maxTokens: TOKENS,
      stream: true,
    });
    let n = 0;
    for await (const e of hub.dispatch(sessionId, "bench-model", chat, { deadlineMs: 120_000 }).events) {
      if (e.type === "chunk" && e.chunk.contentDelta !== "") n++;
      if (e.type === "error") errors++;
    }
    return n;
  };
  const t0 = performance.now();
  const counts = await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => one(i)));
  return { rate: counts.reduce((a, b) => a + b, 0) / ((performance.now() - t0) / 1000), errors };
}

async function main(): Promise<void> {
  const backend = await startBackend();
  const hub = new TunnelHub({ routerId: "bench" });
  const grpc = new GrpcServer(tunnelGrpcServerOptions({ maxMessageBytes: hub.timings.maxMessageBytes }));
  addTunnelService(grpc, hub);
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpc.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  const http = createServer((_q, r) => r.writeHead(404).end());
  const ws = attachTunnelWs(http, hub, { maxMessageBytes: hub.timings.maxMessageBytes });
  http.listen(0, "127.0.0.1");
  await once(http, "listening");
  const httpPort = (http.address() as AddressInfo).port;

  // Both miners stay up and the three paths take turns in every round, so
  // machine noise hits them alike.
  const miners: { transport: "grpc" | "ws"; proc: ChildProcess; sessionId: string }[] = [];
  for (const transport of ["grpc", "ws"] as const) {
    const routerUrl =
      transport === "grpc" ? `grpc://127.0.0.1:${grpcPort}` : `ws://127.0.0.1:${httpPort}/v1/tunnel`;
    const proc = spawn(
      process.execPath,
      [
        CLI,
        "miner",
        "--router",
        routerUrl,
        "--backend",
        backend.url,
        "--transport",
        transport,
        "--max-concurrency",
        "64",
        "--fixed-concurrency",
        // Router pins go to a throwaway folder, not the working directory's .tensorclaw.
        "--data-dir",
        mkdtempSync(join(tmpdir(), "tc-bench-miner-")),
      ],
      {
        env: { ...process.env, TENSORCLAW_MNEMONIC: mnemonicGenerate() },
        stdio: ["ignore", "ignore", "pipe"],
      },
    );
    const sessionId = await new Promise<string>((resolve) => {
      let buf = "";
      proc.stderr?.on("data", (d: Buffer) => {
        buf += d.toString();
        const line = buf.split("\n").find((l) => l.includes("connected via"));
        if (line !== undefined) resolve((JSON.parse(line) as { sessionId: string }).sessionId);
      });
    });
    miners.push({ transport, proc, sessionId });
  }
  const directRates: number[] = [];
  const rates = { grpc: [] as number[], ws: [] as number[] };
  const errors = { grpc: 0, ws: 0 };
  for (let r = 0; r < RUNS; r++) {
    directRates.push(await direct(backend.url));
    for (const m of miners) {
      const res = await viaMiner(hub, m.sessionId);
      rates[m.transport].push(res.rate);
      errors[m.transport] += res.errors;
    }
  }
  const rows: [string, number, string][] = [
    ["backend read directly (baseline)", median(directRates), "-"],
    ["through the miner over grpc", median(rates.grpc), String(errors.grpc)],
    ["through the miner over ws", median(rates.ws), String(errors.ws)],
  ];
  for (const m of miners) {
    m.proc.kill("SIGTERM");
    await once(m.proc, "exit");
  }

  console.log(
    `\nminer relay: ${CONCURRENCY} concurrent streams x ${TOKENS} tokens, median of ${RUNS} run(s)\n`,
  );
  console.log("| path | token chunks/s | errors |");
  console.log("|---|---:|---:|");
  for (const [name, rate, errs] of rows)
    console.log(`| ${name} | ${Math.round(rate).toLocaleString("en-US")} | ${errs} |`);
  hub.close("bench over");
  ws.close();
  http.closeAllConnections();
  http.close();
  grpc.forceShutdown();
  backend.proc.kill("SIGTERM");
}

await main();
