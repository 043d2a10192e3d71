/**
 * The whole subnet as real processes for the loop test: one or more routers
 * sharing one real Redis, miners on a real OpenAI-format backend (each
 * dialling every router), a dry-run validator listing every router, each a
 * `tensorclaw` child; plus the validator's own signed view of the routers
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

/** One miner of the network: its identity and how it dials the routers. */
export interface LoopMiner {
  readonly name: string;
  readonly mnemonic: string;
  readonly hotkey: string;
  /** Its first model. */
  readonly model: string;
  /** Every model it offers (`model` first). */
  readonly models: readonly string[];
  readonly transport: "grpc" | "ws";
  proc: CliProcess | undefined;
}

/** One router replica: its own ports, id and data dir, the Redis shared with the others. */
export interface LoopRouter {
  readonly index: number;
  readonly routerId: string;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly dataDir: string;
  /** `grpc://127.0.0.1:<grpcPort>`: what validators list and gRPC miners dial. */
  readonly grpcUrl: string;
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
  /** The first router's ports (the only router's, by default). */
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly routers: readonly LoopRouter[];
  readonly apiKey: string;
  readonly miners: readonly LoopMiner[];
  readonly validatorKey: Hotkey;
  /** The validator's view: every router, as the validator lists them. */
  readonly client: RouterClient;
  /** The first router's process. */
  router: CliProcess;
  validator: CliProcess;
  /**
   * Starts (or restarts) router `index` (default 0) on its ports and data
   * dir, resolving once it listens.
   */
  startRouter(index?: number): Promise<CliProcess>;
  /** SIGKILLs router `index`: no drain, no flush; waits for the exit. */
  killRouter(index: number): Promise<void>;
  /** A signed client of router `index` alone (closed with the network). */
  routerClient(index: number): RouterClient;
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
  /** Miners: a name, the model each offers (or `models`, several) and its transport. */
  readonly miners: readonly {
    name: string;
    model: string;
    models?: readonly string[];
    transport: "grpc" | "ws";
  }[];
  /** Router replicas sharing the Redis (default 1); every miner dials each, the validator lists each. */
  readonly routers?: number;
  /** Starts the Redis everything shares (default: a private single `redis-server`, test/support/redis.ts). */
  readonly startRedis?: () => Promise<TestRedis>;
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
  const redis = await (opts.startRedis ?? startRedis)();
  const backend = await startOpenAIBackend({
    models: opts.miners.flatMap((m) => m.models ?? [m.model]),
    tokens: opts.backendTokens ?? 8,
  });
  const dir = await mkdtemp(join(tmpdir(), "tc-loop-"));
  const routers: LoopRouter[] = [];
  for (let index = 0; index < (opts.routers ?? 1); index++) {
    const [httpPort, grpcPort] = [await freePort(), await freePort()];
    const dataDir = join(dir, `router-${index}`);
    const grpcUrl = `grpc://127.0.0.1:${grpcPort}`;
    routers.push({
      index,
      routerId: `loop-router-${index}`,
      httpPort,
      grpcPort,
      dataDir,
      grpcUrl,
      proc: undefined,
    });
  }
  const first = routers[0];
  if (first === undefined) throw new Error("a loop network needs at least one router");
  const redisEnv = { REDIS_URL: redis.url };
  const silent = ["--log-level", "warn"];

  const validatorMnemonic = mnemonicGenerate();
  const validatorKey = await hotkeyFromMnemonic(validatorMnemonic);
  const miners: LoopMiner[] = [];
  for (const m of opts.miners) {
    const mnemonic = mnemonicGenerate();
    const hotkey = (await hotkeyFromMnemonic(mnemonic)).address;
    miners.push({ ...m, models: m.models ?? [m.model], mnemonic, hotkey, proc: undefined });
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

  const clientOf = (urls: readonly string[]) =>
    new RouterClient(urls, { signer: validatorKey, logger: silentLogger(), callTimeoutMs: 3000 });
  const client = clientOf(routers.map((r) => r.grpcUrl));
  const single = new Map<number, RouterClient>();

  const net: LoopNetwork = {
    redis,
    backend,
    httpPort: first.httpPort,
    grpcPort: first.grpcPort,
    routers,
    apiKey,
    miners,
    validatorKey,
    client,
    router: undefined as unknown as CliProcess,
    validator: undefined as unknown as CliProcess,
    async startRouter(index = 0) {
      const r = routers[index];
      if (r === undefined) throw new Error(`no router ${index}`);
      const p = procs.spawn(routers.length === 1 ? "router" : `router ${index}`, [
        "router",
        "--http-port",
        String(r.httpPort),
        "--grpc-port",
        String(r.grpcPort),
        "--redis-url",
        redis.url,
        "--data-dir",
        r.dataDir,
        "--router-id",
        r.routerId,
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
      r.proc = p;
      if (index === 0) net.router = p;
      await p.waitFor(/tensorclaw router: API on/, 20_000, "stderr");
      return p;
    },
    async killRouter(index) {
      await routers[index]?.proc?.stop("SIGKILL");
    },
    routerClient(index) {
      const r = routers[index];
      if (r === undefined) throw new Error(`no router ${index}`);
      let c = single.get(index);
      if (c === undefined) {
        c = clientOf([r.grpcUrl]);
        single.set(index, c);
      }
      return c;
    },
    startMiner(m) {
      const dial = routers.flatMap((r) => [
        "--router",
        m.transport === "ws" ? `ws://127.0.0.1:${r.httpPort}/v1/tunnel` : r.grpcUrl,
      ]);
      m.proc = procs.spawn(
        `miner ${m.name}`,
        [
          "miner",
          ...minerDataDirArgs(),
          ...dial,
          "--transport",
          m.transport,
          "--backend",
          backend.url,
          ...m.models.flatMap((model) => ["--models", model]),
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
      for (const c of single.values()) c.close();
      await procs.killAll();
      await backend.close();
      await redis.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(routers.map((r) => net.startRouter(r.index)));
    for (const m of miners) net.startMiner(m);
    net.validator = procs.spawn(
      "validator",
      [
        "validator",
        ...routers.flatMap((r) => ["--router", r.grpcUrl]),
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
