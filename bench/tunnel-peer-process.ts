// Starting bench/tunnel-peer.ts (the far side of a tunnel benchmark) as a child process.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** `node --import` this to run TypeScript sources (see bin/loader.mjs). */
const TS_LOADER = new URL("../bin/register.mjs", import.meta.url).href;
const PEER = fileURLToPath(new URL("./tunnel-peer.ts", import.meta.url));

/** Spawns bench/tunnel-peer.ts with `args`; resolves once it prints "ready". */
export async function startTunnelPeer(args: readonly string[]): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", TS_LOADER, PEER, ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  await new Promise<void>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready")) resolve();
    });
    child.once("exit", (code) =>
      reject(new Error(`tunnel peer ${args.join(" ")} exited with ${String(code)}`)),
    );
  });
  return child;
}
