// grpcs:// and wss:// routers: `tensorclaw miner` (a child process) verifies
// the router's certificate against the public roots plus the CA given with
// --tls-ca, on both transports, and refuses a certificate it cannot verify.

import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { expect } from "chai";
import { pino } from "pino";
import { Miner } from "../../miner/miner.js";
import { MemoryRouterPins } from "../../miner/tunnel/router-pins.js";
import { CLI } from "../support/cli.js";
import { throwawayHotkey } from "../support/keys.js";
import { minerDataDirArgs } from "../support/miner-data-dir.js";
import {
  type MinerTestRouter,
  type RouterTls,
  sessionOf,
  startMinerTestRouter,
} from "../support/miner-router.js";
import { selfSignedLocalhost } from "../support/self-signed.js";

describe("miner over TLS (grpcs, wss)", () => {
  let dir: string;
  let tls: RouterTls;
  let router: MinerTestRouter;
  const children: ChildProcess[] = [];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tensorclaw-tls-"));
    tls = await selfSignedLocalhost(dir);
    router = await startMinerTestRouter({}, tls);
  });
  after(async () => {
    for (const c of children) {
      if (c.exitCode === null && c.signalCode === null) {
        c.kill("SIGKILL");
        await once(c, "exit");
      }
    }
    await router.close();
    await rm(dir, { recursive: true, force: true });
  });

  function runMiner(
    url: string,
    transport: "grpc" | "ws",
    trustCa: boolean,
  ): { proc: ChildProcess; log: () => string } {
    const env: Record<string, string | undefined> = {
      ...process.env,
      TENSORCLAW_MNEMONIC: mnemonicGenerate(),
    };
    // Trust comes from --tls-ca only, whatever the environment says.
    delete env.NODE_EXTRA_CA_CERTS;
    const args = [
      CLI,
      "miner",
      ...minerDataDirArgs(),
      "--router",
      url,
      "--backend",
      "demo",
      "--transport",
      transport,
      "--log-level",
      "info",
    ];
    if (trustCa) args.push("--tls-ca", join(dir, "cert.pem"));
    const proc = spawn(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    children.push(proc);
    let log = "";
    proc.stderr?.on("data", (d: Buffer) => {
      log += d.toString();
    });
    return { proc, log: () => log };
  }

  function waitForLine(proc: ChildProcess, log: () => string, needle: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = log()
          .split("\n")
          .find((l) => l.includes(needle));
        if (line === undefined) return;
        proc.stderr?.off("data", check);
        resolve(line);
      };
      proc.stderr?.on("data", check);
      proc.once("exit", (code) => reject(new Error(`miner exited (${code}):\n${log()}`)));
      check();
    });
  }

  for (const transport of ["grpc", "ws"] as const) {
    it(`connects to a ${transport === "grpc" ? "grpcs" : "wss"} router whose CA it trusts`, async () => {
      const url = transport === "grpc" ? router.grpcUrl : router.wsUrl;
      const { proc, log } = runMiner(url, transport, true);
      const line = await waitForLine(proc, log, `connected via ${transport}`);
      const sessionId = (JSON.parse(line) as { sessionId: string }).sessionId;
      expect(sessionOf(router.hub, sessionId).transport).to.equal(transport);
      proc.kill("SIGTERM");
      await once(proc, "exit");
    });
  }

  for (const transport of ["grpc", "ws"] as const) {
    it(`refuses a ${transport === "grpc" ? "grpcs" : "wss"} certificate it cannot verify and keeps retrying`, async () => {
      // In-process (no child needed to show a refusal): the log goes to memory.
      let log = "";
      const logger = pino(
        { level: "info" },
        {
          write: (line: string) => {
            log += line;
          },
        },
      );
      const miner = new Miner(
        {
          router: [transport === "grpc" ? router.grpcUrl : router.wsUrl],
          backend: "demo",
          backendKey: undefined,
          models: [],
          maxConcurrency: 1,
          contextLength: 0,
          transport,
          healthIntervalMs: 60_000,
          connectTimeoutMs: 2000,
        },
        { hotkey: await throwawayHotkey(), routerPins: new MemoryRouterPins(), logger },
      );
      try {
        await miner.start();
        const tunnel = miner.tunnels[0];
        await tunnel?.waitFor((s) => s.state === "connecting");
        // The failed attempt ends in backoff: the tunnel was never established.
        await tunnel?.waitFor((s) => s.state === "backoff");
        expect(log).to.match(/self-signed certificate/);
        expect(tunnel?.status.connects).to.equal(0);
        expect(router.hub.sessions()).to.deep.equal([]);
      } finally {
        await miner.stop();
      }
    });
  }
});
