// The far side of bench/tunnel.ts (and of bench/api.ts's fleet), run as a
// child process so the router side is measured on its own core. Roles:
//   miner    one tunnel serving every request with chunks as fast as credit allows
//   idle     many tunnels that complete the handshake and then only answer pings
//   fleet    many miners, each its own hotkey, offering models other than the
//            one measured, idle: the rest of a subnet on the router measured
//   raw-ws   tiny binary messages over a plain WebSocket, as fast as it drains
//   raw-grpc tiny messages over a plain grpc-js bidi stream, as fast as it drains
// The child prints "ready" on stdout when set up and runs until killed.
import { Client, type ClientDuplexStream, credentials } from "@grpc/grpc-js";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import WebSocket from "ws";
import { hotkeyFromMnemonic, initCrypto } from "../common/identity.js";
import { type RawTransport, RawTunnelClient } from "../test/support/raw-tunnel-client.js";
import { FakeMiner } from "../test/support/tunnel-fake-miner.js";

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  const v = i === -1 ? fallback : process.argv[i + 1];
  if (v === undefined) throw new Error(`tunnel-peer: --${name} is required`);
  return v;
}

async function miner(): Promise<void> {
  await initCrypto();
  const key = await hotkeyFromMnemonic(mnemonicGenerate());
  const transport = arg("transport") as RawTransport;
  const endpoints = { grpc: arg("grpc"), ws: arg("ws") };
  const chunks = Number(arg("chunks"));
  const concurrency = Number(arg("concurrency"));
  const text = arg("text", "tok ");
  const client = await RawTunnelClient.open(transport, endpoints);
  const verdict = await client.handshake(key, {
    models: [{ id: "bench", maxConcurrency: concurrency, contextLength: 0, kinds: [] }],
  });
  if (verdict.accept === undefined) throw new Error(`refused: ${verdict.reject?.message}`);
  const plan = {
    chunks: Array.from({ length: chunks }, () => text),
    end: { usage: [1, chunks] as [number, number] },
  };
  new FakeMiner(client, { plan: () => plan, chunksPerTurn: 4096 });
  process.stdout.write("ready\n");
}

async function idle(): Promise<void> {
  await initCrypto();
  const key = await hotkeyFromMnemonic(mnemonicGenerate());
  const transport = arg("transport") as RawTransport;
  const endpoints = { grpc: arg("grpc"), ws: arg("ws") };
  const count = Number(arg("count"));
  const clients: RawTunnelClient[] = [];
  // A few at a time: a real fleet does not connect in one burst either.
  for (let i = 0; i < count; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, async () => {
        const c = await RawTunnelClient.open(transport, endpoints);
        const v = await c.handshake(key);
        if (v.accept === undefined) throw new Error(`refused: ${v.reject?.message}`);
        return c;
      }),
    );
    clients.push(...batch);
  }
  process.stdout.write("ready\n");
}

async function fleet(): Promise<void> {
  await initCrypto();
  const transport = arg("transport") as RawTransport;
  const endpoints = { grpc: arg("grpc"), ws: arg("ws") };
  const count = Number(arg("count"));
  const models = Array.from({ length: Number(arg("models")) }, (_, i) => ({
    id: `fleet-model-${i}`,
    maxConcurrency: 8,
    contextLength: 8192,
    kinds: [],
  }));
  const clients: RawTunnelClient[] = [];
  // 8 at a time: the router lets one address have at most 16 handshakes in progress.
  for (let i = 0; i < count; i += 8) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(8, count - i) }, async () => {
        const key = await hotkeyFromMnemonic(mnemonicGenerate());
        const c = await RawTunnelClient.open(transport, endpoints);
        const v = await c.handshake(key, { models });
        if (v.accept === undefined) throw new Error(`refused: ${v.reject?.message}`);
        return c;
      }),
    );
    clients.push(...batch);
  }
  process.stdout.write("ready\n");
}

function rawWs(): void {
  const ws = new WebSocket(arg("url"), { perMessageDeflate: false });
  const tiny = Buffer.alloc(8, 1);
  let unsent = 0;
  const pump = (): void => {
    while (unsent < 512 * 1024) {
      unsent += tiny.length;
      ws.send(tiny, { binary: true }, () => {
        unsent -= tiny.length;
        if (unsent === 0) setImmediate(pump);
      });
    }
  };
  ws.on("open", () => {
    process.stdout.write("ready\n");
    pump();
  });
  ws.on("error", () => {});
}

function rawGrpc(): void {
  const client = new Client(arg("address"), credentials.createInsecure());
  const call: ClientDuplexStream<Buffer, Buffer> = client.makeBidiStreamRequest(
    arg("path"),
    (b: Buffer) => b,
    (b: Buffer) => b,
  );
  call.on("error", () => {});
  const tiny = Buffer.alloc(8, 1);
  // Keep a deep queue of writes in flight (completion callbacks, not the
  // stream's 16-object high-water mark) so grpc-js, not the pump, is the limit.
  let outstanding = 0;
  const pump = (): void => {
    while (outstanding < 1024) {
      outstanding++;
      call.write(tiny, () => {
        outstanding--;
        if (outstanding === 512) setImmediate(pump);
      });
    }
  };
  process.stdout.write("ready\n");
  pump();
}

const role = arg("role");
const roles: Record<string, () => void | Promise<void>> = {
  miner,
  idle,
  fleet,
  "raw-ws": rawWs,
  "raw-grpc": rawGrpc,
};
const run = roles[role];
if (run === undefined) throw new Error(`tunnel-peer: unknown role ${role}`);
Promise.resolve(run()).catch((err: unknown) => {
  process.stderr.write(`tunnel-peer ${role} failed: ${String((err as Error).stack ?? err)}\n`);
  process.exit(1);
});
