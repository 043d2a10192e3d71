/**
 * The whole subnet as real processes for the loop test: a router on a real
 * Redis, miners on a real OpenAI-format backend, a dry-run validator, each a
 * `tensorclaw` child; plus the validator's own signed view of the router
 * (Directory and UsageReport through validator/router-client.ts).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { type Hotkey, hotkeyFromMnemonic, initCrypto } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { MinerState } from "../../gen/tensorclaw/v1/directory.js";
import { RouterClient } from "../../validator/router-client.js";
import { runCli } from "./cli.js";
import { type CliProcess, ProcessSet } from "./loop-process.js";
import { minerDataDirArgs } from "./miner-data-dir.js";
import { type OpenAIBackend, startOpenAIBackend } from "./openai-backend.js";
import { freePort, startRedis, type TestRedis } from "./redis.js";

/** One miner of the network: its identity and how it dials the router. */
export interface LoopMiner {
  readonly name: string;
  readonly mnemonic: string;
  readonly hotkey: string;
  readonly model: string;
  readonly transport: "grpc" | "ws";
  proc: CliProcess | undefined;
}

/** Ledger totals of one miner (from GetUsage). */
export interface LedgerTotals {
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly requests: number;
}

/** The running network; `close()` kills every child and removes its files. */
export interface LoopNetwork {
  readonly redis: TestRedis;
  readonly backend: OpenAIBackend;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly apiKey: string;
  readonly miners: readonly LoopMiner[];
  readonly validatorKey: Hotkey;
  readonly client: RouterClient;
  router: CliProcess;
  validator: CliProcess;
  /** Starts (or restarts) the router on the same ports, resolving once it listens. */
  startRouter(): Promise<CliProcess>;
  /** Starts (or restarts, same mnemonic) a miner. */
  startMiner(m: LoopMiner): CliProcess;
  /** Hotkeys with an active session, from the signed Directory. */
  activeHotkeys(): Promise<Set<string>>;
  /** GetUsage (24 h window) per hotkey. */
  ledger(): Promise<Map<string, LedgerTotals>>;
  close(): Promise<void>;
}

/** Settings of {@link startLoopNetwork}. */
export interface LoopNetworkOptions {
  /** Miners: a name, the one model each offers and its transport. */
  readonly miners: readonly { name: string; model: string; transport: "grpc" | "ws" }[];
  /** Tier multipliers set with `tensorclaw router tiers set` before the router starts. */
  readonly tiers?: Readonly<Record<string, number>>;
  /** Completion pieces per backend answer. */
  readonly backendTokens?: number;
  /**
   * Whether the router lets free (unmetered) traffic earn, as the dev network
   * does: default true, since the network's own key is unmetered.
   */
  readonly countFreeTraffic?: boolean;
  /** Catalogue prices (USD per million prompt / completion tokens), set before the router starts. */
  readonly prices?: Readonly<Record<string, { prompt: number; completion: number }>>;
}

/** Starts Redis, the backend, an API key, tiers, the router, the miners and the validator. */
export async function startLoopNetwork(opts: LoopNetworkOptions): Promise<LoopNetwork> {
  await initCrypto();
  const procs = new ProcessSet();
  const redis = await startRedis();
  const backend = await startOpenAIBackend({
    models: opts.miners.map((m) => m.model),
    tokens: opts.backendTokens ?? 8,
  });
  const dir = await mkdtemp(join(tmpdir(), "tc-loop-"));
  const [httpPort, grpcPort] = [await freePort(), await freePort()];
  const redisEnv = { REDIS_URL: redis.url };
  const silent = ["--log-level", "warn"];

  const validatorMnemonic = mnemonicGenerate();
  const validatorKey = await hotkeyFromMnemonic(validatorMnemonic);
  const miners: LoopMiner[] = [];
  for (const m of opts.miners) {
    const mnemonic = mnemonicGenerate();
    miners.push({ ...m, mnemonic, hotkey: (await hotkeyFromMnemonic(mnemonic)).address, proc: undefined });
  }

  const setup = await Promise.all([
    runCli(["keys", "create", "--name", "loop", "--rpm", "0", "--tpm", "0", "--json"], redisEnv),
    ...Object.entries(opts.tiers ?? {}).map(([model, mult]) =>
      runCli(["router", "tiers", "set", model, String(mult)], redisEnv),
    ),
    ...Object.entries(opts.prices ?? {}).map(([model, p]) =>
      runCli(
        [
          "router",
          "models",
          "set",
          model,
          "--price-prompt",
          String(p.prompt),
          "--price-completion",
          String(p.completion),
        ],
        redisEnv,
      ),
    ),
  ]);
  for (const r of setup) if (r.code !== 0) throw new Error(`setup command failed: ${r.stderr}`);
  const apiKey = (JSON.parse(setup[0]?.stdout ?? "{}") as { key?: string }).key;
  if (apiKey === undefined) throw new Error(`no key in ${setup[0]?.stdout}`);

  const client = new RouterClient([`grpc://127.0.0.1:${grpcPort}`], {
    signer: validatorKey,
    logger: silentLogger(),
    callTimeoutMs: 3000,
  });

  const net: LoopNetwork = {
    redis,
    backend,
    httpPort,
    grpcPort,
    apiKey,
    miners,
    validatorKey,
    client,
    router: undefined as unknown as CliProcess,
    validator: undefined as unknown as CliProcess,
    async startRouter() {
      const p = procs.spawn("router", [
        "router",
        "--http-port",
        String(httpPort),
        "--grpc-port",
        String(grpcPort),
        "--redis-url",
        redis.url,
        "--data-dir",
        dir,
        "--validators",
        validatorKey.address,
        "--drain-grace-ms",
        "1000",
        // Routes the miners' models beyond those given tiers (which are catalogue entries).
        "--open-catalogue",
        // Its API key is unmetered (free): like the dev network, let free traffic earn (unless told not to).
        ...(opts.countFreeTraffic === false ? [] : ["--count-free-traffic"]),
        ...silent,
      ]);
      net.router = p;
      await p.waitFor(/tensorclaw router: API on/, 20_000, "stderr");
      return p;
    },
    startMiner(m) {
      const router =
        m.transport === "ws" ? `ws://127.0.0.1:${httpPort}/v1/tunnel` : `grpc://127.0.0.1:${grpcPort}`;
      m.proc = procs.spawn(
        `miner ${m.name}`,
        [
          "miner",
          ...minerDataDirArgs(),
          "--router",
          router,
          "--transport",
          m.transport,
          "--backend",
          backend.url,
          "--models",
          m.model,
          ...silent,
        ],
        { TENSORCLAW_MNEMONIC: m.mnemonic },
      );
      return m.proc;
    },
    async activeHotkeys() {
      const list = await client.listMiners();
      return new Set(
        list.sessions.filter((s) => s.state === MinerState.MINER_STATE_ACTIVE).map((s) => s.hotkey),
      );
    },
    async ledger() {
      const usage = await client.getUsage(0);
      return new Map(
        usage.miners.map((u) => [
          u.hotkey,
          {
            promptTokens: Number(u.promptTokens),
            completionTokens: Number(u.completionTokens),
            requests: Number(u.requests),
          },
        ]),
      );
    },
    async close() {
      client.close();
      await procs.killAll();
      await backend.close();
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await net.startRouter();
    for (const m of miners) net.startMiner(m);
    net.validator = procs.spawn(
      "validator",
      [
        "validator",
        "--router",
        `grpc://127.0.0.1:${grpcPort}`,
        "--dry-run",
        "--probe-interval-s",
        "1",
        "--weights-interval-s",
        "1",
        // The router's liveness deadline (8 s): a frozen miner's probe is judged only then, and a
        // validator that gives up sooner records nothing for it. (A probe of a frozen miner takes
        // an ordinary slot, so no longer finds the spare slot busy after the first.)
        "--probe-timeout-ms",
        "8000",
        // The router here is seconds old: without this, no absent miner would count as disconnected.
        "--reconnect-grace-ms",
        "0",
        "--state-file",
        join(dir, "validator-state.json"),
        ...silent,
      ],
      { TENSORCLAW_MNEMONIC: validatorMnemonic },
    );
  } catch (err) {
    await net.close();
    throw err;
  }
  return net;
}
