// What `tensorclaw dev` does once its settings are read. Apart from cli/dev.ts
// (help and settings), so that `dev --help` loads none of this.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import type { CommandIO } from "../common/command.js";
import type { ParsedCommand } from "../common/config.js";
import { TensorClawError } from "../common/errors.js";
import { hotkeyFromMnemonic } from "../common/identity.js";
import { DEMO_EMBEDDING_MODEL_ID, DEMO_MODEL_ID } from "../miner/backend/demo.js";
import type { DevConfig } from "./dev-config.js";
import { DevSupervisor } from "./dev-supervisor.js";

/** Identities of the local network, kept across runs so hotkeys stay stable. */
interface DevIdentities {
  validator: string;
  miners: string[];
}

/** The router id of a local network (its miners pin it in their --router URLs). */
const DEV_ROUTER_ID = "tensorclaw-dev";

async function loadIdentities(path: string, miners: number): Promise<DevIdentities> {
  let ids: DevIdentities = { validator: mnemonicGenerate(), miners: [] };
  try {
    const doc = JSON.parse(await readFile(path, "utf8")) as Partial<DevIdentities>;
    if (typeof doc.validator === "string" && Array.isArray(doc.miners)) {
      ids = {
        validator: doc.validator,
        miners: doc.miners.filter((m): m is string => typeof m === "string"),
      };
    }
  } catch {
    // First run (or an unreadable file): fresh identities below.
  }
  while (ids.miners.length < miners) ids.miners.push(mnemonicGenerate());
  await writeFile(path, `${JSON.stringify(ids, null, 2)}\n`, { mode: 0o600 });
  return ids;
}

/** Resolves the port to use: a fixed one must be free; 0 asks the kernel for one. */
async function claimPort(port: number, flag: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", (err: NodeJS.ErrnoException) => {
      const why =
        err.code === "EADDRINUSE" ? "is already in use" : `cannot be used (${err.code ?? err.message})`;
      reject(
        new TensorClawError(
          "config_invalid",
          `port ${port} ${why}: pass ${flag} <port> with a free port (or ${flag} 0 to pick one)`,
        ),
      );
    });
    srv.listen(port, "127.0.0.1", () => {
      const addr = srv.address();
      const chosen = typeof addr === "object" && addr !== null ? addr.port : port;
      srv.close(() => resolve(chosen));
    });
  });
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  io: Progress,
): Promise<void> {
  const started = Date.now();
  io.err(`  ${what} `);
  for (;;) {
    if (await check().catch(() => false)) {
      io.err(`ok (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
      return;
    }
    if (Date.now() - started > timeoutMs) {
      io.err("timed out\n");
      throw new TensorClawError("unavailable", `${what} did not become ready within ${timeoutMs / 1000} s`);
    }
    io.err(".");
    await new Promise((r) => setTimeout(r, 250));
  }
}

interface Progress {
  err(text: string): void;
  out(text: string): void;
}

async function createKey(sup: DevSupervisor, keysFile: string): Promise<string> {
  const child = sup.start({
    label: "keys",
    args: ["keys", "create", "--name", "dev", "--keys-file", keysFile, "--json"],
    oneShot: true,
  });
  let text = "";
  child.stdout?.on("data", (d: Buffer | string) => {
    text += d.toString();
  });
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  const key = /"key":"([^"]+)"/.exec(text)?.[1];
  if (code !== 0 || key === undefined)
    throw new TensorClawError("internal", "could not create a dev API key");
  return key;
}

function banner(
  cfg: DevConfig,
  http: number,
  grpc: number,
  key: string,
  miners: string[],
  validator: string,
): string {
  const base = `http://127.0.0.1:${http}/v1`;
  const model = cfg.backend === "demo" ? DEMO_MODEL_ID : "<a model your backend serves>";
  const body = JSON.stringify({ model, messages: [{ role: "user", content: "Hello!" }] });
  return [
    "",
    "TensorClaw local network is up.",
    `  OpenAI API   ${base}   API key: ${key}`,
    `  Web console  http://127.0.0.1:${http}/   (network, playground, account: paste the key there)`,
    `  gRPC         127.0.0.1:${grpc}  (Probe, UsageReport, MinerDirectory, health, reflection)`,
    ...miners.map(
      (m, i) => `  miner ${i + 1}      ${m}  (${i === 0 ? "WebSocket" : "gRPC"}, backend ${cfg.backend})`,
    ),
    `  validator    ${validator}  (dry run: prints scores${simulated(cfg)} every ${cfg.probeIntervalS} s${
      cfg.backend === "demo" ? "; audits answers and vectors against the demo models as references" : ""
    })`,
    "",
    "Try it with curl:",
    `  curl ${base}/chat/completions -H 'Authorization: Bearer ${key}' -H 'Content-Type: application/json' \\`,
    `    -d '${body}'`,
    "",
    "Or with the openai SDK (Node):",
    '  import OpenAI from "openai";',
    `  const client = new OpenAI({ baseURL: "${base}", apiKey: "${key}" });`,
    `  const r = await client.chat.completions.create({ model: "${model}", messages: [{ role: "user", content: "Hello!" }] });`,
    "  console.log(r.choices[0].message.content);",
    "",
    "Connected miners over gRPC (buf is installed with npm ci):",
    `  npx buf curl --protocol grpc --http2-prior-knowledge http://127.0.0.1:${grpc}/tensorclaw.v1.MinerDirectoryService/ListMiners`,
    "",
    "Press Ctrl-C to stop.",
    "",
  ].join("\n");
}

/** What the banner says the validator prints besides scores. */
function simulated(cfg: DevConfig): string {
  switch (cfg.simulateChain) {
    case "off":
      return "";
    case "set-weights":
      return " and the set_weights call it would make";
    case "commit-reveal":
      return " and the timelocked commit it would make";
  }
}

/** Starts the network, prints how to use it, and runs until SIGINT/SIGTERM or a program dies. */
export async function devMain(parsed: ParsedCommand<DevConfig>, io: CommandIO): Promise<number> {
  const cfg = parsed.config;
  const progress: Progress = { err: io.stderr, out: io.stdout };
  const http = await claimPort(cfg.httpPort, "--http-port");
  const grpc = await claimPort(cfg.grpcPort, "--grpc-port");
  await mkdir(cfg.dataDir, { recursive: true });
  const ids = await loadIdentities(join(cfg.dataDir, "identities.json"), cfg.miners);
  const validatorKey = await hotkeyFromMnemonic(ids.validator);
  const minerKeys = await Promise.all(ids.miners.slice(0, cfg.miners).map((m) => hotkeyFromMnemonic(m)));

  const sup = new DevSupervisor({ out: io.stdout, err: io.stderr });
  let failed: ((err: Error) => void) | undefined;
  const failure = new Promise<never>((_, reject) => {
    failed = reject;
  });
  failure.catch(() => {});
  sup.onUnexpectedExit((label, code, tail) => {
    io.stderr(`\n${label} exited unexpectedly (code ${code}). Last lines:\n${tail.join("\n")}\n`);
    failed?.(new TensorClawError("unavailable", `${label} exited`));
  });
  const stopped = new Promise<void>((resolve) => {
    const onSignal = () => resolve();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  });
  const logLevel = ["--log-level", cfg.logLevel];
  try {
    io.stderr("Starting the TensorClaw local network\n");
    const keysFile = join(cfg.dataDir, "api-keys.json");
    const key = await createKey(sup, keysFile);
    sup.start({
      label: "router",
      args: [
        "router",
        "--http-port",
        String(http),
        "--grpc-port",
        String(grpc),
        "--data-dir",
        cfg.dataDir,
        "--router-id",
        DEV_ROUTER_ID,
        "--validators",
        validatorKey.address,
        "--public-directory",
        // A dev network routes whatever its miners offer; production routers route their catalogue.
        "--open-catalogue",
        // Its demo key is unmetered: without this its traffic would earn no business points.
        "--count-free-traffic",
        ...logLevel,
      ],
    });
    await Promise.race([
      failure,
      waitFor("router", async () => (await fetch(`http://127.0.0.1:${http}/healthz`)).ok, 30_000, progress),
    ]);
    minerKeys.forEach((_key, i) => {
      // The URL names the router id, so the miners pin nothing in the folder they run from.
      const router =
        i === 0
          ? `ws://127.0.0.1:${http}/v1/tunnel?id=${DEV_ROUTER_ID}`
          : `grpc://127.0.0.1:${grpc}?id=${DEV_ROUTER_ID}`;
      sup.start({
        label: `miner-${i + 1}`,
        args: ["miner", "--router", router, "--backend", cfg.backend, ...logLevel],
        env: { TENSORCLAW_MNEMONIC: ids.miners[i] as string },
      });
    });
    const minersUp = async () => {
      const res = await fetch(`http://127.0.0.1:${http}/v1/models`, {
        headers: { authorization: `Bearer ${key}` },
      });
      if (!res.ok) return false;
      const doc = (await res.json()) as { data?: { miners?: number }[] };
      return (doc.data ?? []).reduce((n, m) => Math.max(n, m.miners ?? 0), 0) >= cfg.miners;
    };
    await Promise.race([failure, waitFor(`${cfg.miners} miners`, minersUp, 60_000, progress)]);
    // With the demo backend, the validator audits the miners' answers and vectors against the demo
    // models themselves, served as a reference the way an operator would run vLLM next to a validator.
    const reference: string[] = [];
    if (cfg.backend === "demo") {
      const port = await claimPort(0, "(reference)");
      sup.start({ label: "reference", args: ["demo-model", "--port", String(port)] });
      const url = `http://127.0.0.1:${port}`;
      await Promise.race([
        failure,
        waitFor("reference model", async () => (await fetch(`${url}/health`)).ok, 30_000, progress),
      ]);
      reference.push(
        "--reference",
        `${DEMO_MODEL_ID}=${url}`,
        "--reference",
        `${DEMO_EMBEDDING_MODEL_ID}=${url}`,
      );
    }
    sup.start({
      label: "validator",
      args: [
        "validator",
        "--router",
        `grpc://127.0.0.1:${grpc}`,
        "--dry-run",
        "--probe-interval-s",
        String(cfg.probeIntervalS),
        "--weights-interval-s",
        String(cfg.probeIntervalS),
        "--state-file",
        join(cfg.dataDir, "validator-state.json"),
        "--simulate-chain",
        cfg.simulateChain,
        ...reference,
        ...logLevel,
      ],
      env: { TENSORCLAW_MNEMONIC: ids.validator },
      rawStdout: true,
    });
    io.stdout(
      banner(
        cfg,
        http,
        grpc,
        key,
        minerKeys.map((k) => k.address),
        validatorKey.address,
      ),
    );
    await Promise.race([failure, stopped]);
    io.stderr("\nStopping…\n");
    await sup.stop();
    return 0;
  } catch (err) {
    await sup.stop();
    throw err;
  }
}
