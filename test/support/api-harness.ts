import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { Registry } from "prom-client";
import { type Clock, systemClock } from "../../common/clock.js";
import { hotkeyFromMnemonic, initCrypto } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import type { TokenCountMemo } from "../../common/tokens/count-memo.js";
import { Encodings } from "../../common/tokens/encodings.js";
import { allowList, ValidatorAuth } from "../../common/validator-call/server.js";
import { MinerDirectoryServiceService } from "../../gen/tensorclaw/v1/directory.js";
import type { CapacityQueue } from "../../router/api/capacity-queue.js";
import type { ChatOptions } from "../../router/api/chat.js";
import type { ConnectionLimits } from "../../router/api/connection-limits.js";
import type { CorsOrigins } from "../../router/api/cors.js";
import type { HoldLeaseOptions } from "../../router/api/hold-leases.js";
import { type ApiKeyStore, ApiKeys } from "../../router/api/keys.js";
import { EmbeddedRateLimiter, type RateLimiter } from "../../router/api/rate-limiter.js";
import {
  API_DEFAULTS,
  capacityQueue,
  type RunningApiServer,
  startApiServer,
} from "../../router/api/server.js";
import type { BillingStore } from "../../router/billing/billing.js";
import { loadCatalogueEncodings, ModelCatalogue } from "../../router/catalogue/catalogue.js";
import { ApiMetrics } from "../../router/metrics.js";
import { RoutingBook } from "../../router/routing/book.js";
import { directoryService } from "../../router/services/directory.js";
import { addProbeService, type ProbeService } from "../../router/services/probe.js";
import type { TrafficShapeRecorder } from "../../router/services/traffic-shape.js";
import { VerdictBook } from "../../router/services/verdicts.js";
import { addTunnelService, tunnelGrpcServerOptions } from "../../router/tunnel/grpc.js";
import { TunnelHub } from "../../router/tunnel/hub.js";
import type { TunnelTimings } from "../../router/tunnel/options.js";
import { attachTunnelWs, type TunnelWsEndpoint } from "../../router/tunnel/ws.js";
import type { UsageEvent, UsageSink } from "../../router/usage/event.js";
import { CLI } from "./cli.js";
import { waitForSessions } from "./hub-sessions.js";
import { minerDataDirArgs } from "./miner-data-dir.js";

/**
 * A UsageSink that keeps events for assertions and lets a test await them.
 * Its events are durable at once, unless a test holds them (`holdDurability`)
 * to see what the API does while an event is not yet in the ledger.
 */
export class RecordingSink implements UsageSink {
  readonly events: UsageEvent[] = [];
  private waiters: (() => void)[] = [];
  /** While held: who waits for their event to be durable. */
  #held: (() => void)[] | undefined;

  record(event: UsageEvent): void {
    this.events.push(event);
    for (const w of this.waiters.splice(0)) w();
  }

  recordDurably(event: UsageEvent): Promise<void> {
    this.record(event);
    const held = this.#held;
    return held === undefined ? Promise.resolve() : new Promise((resolve) => held.push(resolve));
  }

  /** From now on, events recorded durably are durable only at `releaseDurability()`. */
  holdDurability(): void {
    this.#held ??= [];
  }

  /** Makes every held event durable, and stops holding. */
  releaseDurability(): void {
    const held = this.#held ?? [];
    this.#held = undefined;
    for (const resolve of held) resolve();
  }

  /** Resolves once `n` events were recorded. */
  async waitFor(n: number): Promise<UsageEvent[]> {
    return this.waitUntil((events) => events.length >= n);
  }

  /** Resolves once the recorded events satisfy `done`. */
  async waitUntil(done: (events: readonly UsageEvent[]) => boolean): Promise<UsageEvent[]> {
    while (!done(this.events)) await new Promise<void>((r) => this.waiters.push(r));
    return this.events;
  }
}

/**
 * Settles the final usage events (those with `billing`) in a billing store,
 * one after another in recording order, as the router's ledger does
 * (LedgerWithBilling behind the usage recorder).
 */
export class SettlingSink implements UsageSink {
  /** Settle calls that failed (a test expecting none checks this is empty). */
  readonly errors: unknown[] = [];
  #chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: BillingStore,
    private readonly clock: () => number,
  ) {}

  record(event: UsageEvent): void {
    if (event.billing === undefined) return;
    this.#chain = this.#chain
      .then(() => this.store.settle([event], this.clock()))
      .then(
        () => {},
        (err: unknown) => void this.errors.push(err),
      );
  }

  /** Resolves once every event recorded so far is settled. */
  idle(): Promise<void> {
    return this.#chain;
  }
}

/** A router (hub on gRPC + WS, Business API on HTTP) on 127.0.0.1 port 0. */
export interface RouterUnderTest {
  readonly hub: TunnelHub;
  /** The router's routing state (learned limits, breakers, outcomes). */
  readonly routing: RoutingBook;
  /** The capacity queue users and probes of full tunnels wait in. */
  readonly queue: CapacityQueue;
  readonly api: RunningApiServer;
  /** Base URL for the openai client (ends in /v1). */
  readonly baseURL: string;
  /** `grpc://127.0.0.1:port` for `tensorclaw miner --router`. */
  readonly grpcUrl: string;
  /** The WebSocket tunnel on the API's own HTTP port. */
  readonly wsUrl: string;
  readonly usage: RecordingSink;
  /** With a billing store: settles the final usage events in it. */
  readonly settling: SettlingSink | undefined;
  readonly keys: ApiKeys | undefined;
  readonly registry: Registry;
  /** ProbeService, on the gRPC port behind validator-call auth (any correctly signed caller). */
  readonly probes: ProbeService;
  /** The validators' verdicts, as ReportVerdicts applies them and routing reads them. */
  readonly verdicts: VerdictBook;
  /** Replaces the model catalogue, as the router's watcher does when the operator changes it. */
  setCatalogue(catalogue: ModelCatalogue): Promise<void>;
  close(): Promise<void>;
}

/** Options of a router under test. */
export interface RouterOptions {
  /** A key store turns authentication on. */
  readonly keyStore?: ApiKeyStore;
  readonly limiter?: RateLimiter;
  readonly chat?: Partial<ChatOptions>;
  readonly timings?: Partial<TunnelTimings>;
  readonly ready?: () => boolean;
  readonly readyDetail?: () => Record<string, number>;
  /** Bearer token /metrics asks for (`--metrics-token`). */
  readonly metricsToken?: string;
  /** The model catalogue (default: open and empty, every offered id routed). */
  readonly catalogue?: ModelCatalogue;
  /** Hotkeys allowed to call the validator services (default: any correctly signed caller). */
  readonly validators?: readonly string[];
  /** The router's --router-id (default "router-api-test"). */
  readonly routerId?: string;
  /** Where the chat endpoint records the shapes of user requests (and GetTrafficShape reads them). */
  readonly trafficShape?: TrafficShapeRecorder;
  /** Wall clock of the Business API and ProbeService (their deadline rule) and the probes' timers. */
  readonly clock?: Clock;
  /** The probes' liveness deadline (default the production 8 s). */
  readonly livenessMs?: number;
  /** Turns billing on: holds, `billing` on usage events (settled in this store), account endpoints. */
  readonly billing?: BillingStore;
  /** Lease timings of metered keys' holds (default: the production ones). */
  readonly billingLeases?: HoldLeaseOptions;
  /** Web origins allowed from browsers (`--cors-origins`; default none). */
  readonly corsOrigins?: CorsOrigins;
  /** HTTP connection caps (default: the router's). */
  readonly connectionLimits?: ConnectionLimits;
  /** Requests one key may have in progress (`--max-concurrent-per-key`; default the router's). */
  readonly maxConcurrentPerKey?: number;
  /** The chat endpoint's memo of prompt token counts (default: its own). */
  readonly promptCounts?: TokenCountMemo;
}

/** Starts a router made of the real hub and the real Business API. */
export async function startRouter(opts: RouterOptions = {}): Promise<RouterUnderTest> {
  const hub = new TunnelHub({ routerId: opts.routerId ?? "router-api-test", timings: opts.timings ?? {} });
  let catalogue = opts.catalogue ?? ModelCatalogue.empty(true);
  hub.setModelFilter(catalogue);
  const encodings = new Encodings();
  await loadCatalogueEncodings(encodings, catalogue);
  const grpc = new GrpcServer(tunnelGrpcServerOptions({ maxMessageBytes: hub.timings.maxMessageBytes }));
  addTunnelService(grpc, hub);
  const verdicts = new VerdictBook();
  const routing = new RoutingBook({
    now: () => performance.now(),
    random: Math.random,
    barred: (model) => verdicts.excludedHotkeys(model),
  });
  const clock = opts.clock ?? systemClock;
  // No start-up grace unless a test asks: an unknown model is a 404 from the first request.
  const options = { ...API_DEFAULTS, userSalt: "test-salt", startupGraceMs: 0, ...opts.chat };
  // ProbeService as the router wires it: the API's request rules, catalogue and tokenizers.
  const authorize = opts.validators === undefined ? () => true : allowList(opts.validators);
  const auth = new ValidatorAuth({ routerId: hub.routerId, authorize });
  // The miner directory as the router serves it (behind the same auth), so a real validator can list miners.
  const directory = auth.wrap(
    MinerDirectoryServiceService,
    directoryService({ sessions: () => hub.sessions(), servingSinceMs: Date.now(), logger: silentLogger() }),
  );
  grpc.addService(directory.definition, directory.implementation);
  const registry = new Registry();
  const wallClock = () => clock.now();
  const metrics = new ApiMetrics(registry, { sessions: () => hub.sessions() });
  // Users and probes of full tunnels wait in one capacity queue, as in the router.
  const queue = capacityQueue({
    dispatcher: hub,
    clock: wallClock,
    metrics,
    logger: silentLogger(),
    options,
  });
  const probes = addProbeService(grpc, auth, {
    dispatcher: hub,
    routing,
    queue,
    now: () => performance.now(),
    clock,
    random: Math.random,
    logger: silentLogger(),
    chat: options,
    catalogue: () => catalogue,
    encodings,
    verdicts,
    ...(opts.livenessMs === undefined ? {} : { livenessMs: opts.livenessMs }),
    ...(opts.trafficShape === undefined ? {} : { trafficShape: opts.trafficShape }),
  });
  const grpcPort = await new Promise<number>((resolve, reject) => {
    grpc.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, port) =>
      err === null ? resolve(port) : reject(err),
    );
  });
  const usage = new RecordingSink();
  const settling = opts.billing === undefined ? undefined : new SettlingSink(opts.billing, wallClock);
  const keys = opts.keyStore === undefined ? undefined : new ApiKeys(opts.keyStore);
  const api = await startApiServer(
    {
      dispatcher: hub,
      usage:
        settling === undefined
          ? usage
          : {
              record: (e) => {
                usage.record(e);
                settling.record(e);
              },
            },
      limiter: opts.limiter ?? new EmbeddedRateLimiter(),
      queue,
      metrics,
      clock: wallClock,
      logger: silentLogger(),
      catalogue: () => catalogue,
      encodings,
      options,
      routing,
      keys,
      registry,
      ready: opts.ready ?? (() => true),
      ...(opts.readyDetail === undefined ? {} : { readyDetail: opts.readyDetail }),
      ...(opts.metricsToken === undefined ? {} : { metricsToken: opts.metricsToken }),
      ...(opts.corsOrigins === undefined ? {} : { corsOrigins: opts.corsOrigins }),
      ...(opts.maxConcurrentPerKey === undefined ? {} : { maxConcurrentPerKey: opts.maxConcurrentPerKey }),
      ...(opts.trafficShape === undefined ? {} : { trafficShape: opts.trafficShape }),
      ...(opts.billing === undefined ? {} : { billing: opts.billing }),
      ...(opts.billingLeases === undefined ? {} : { billingLeases: opts.billingLeases }),
      ...(opts.promptCounts === undefined ? {} : { promptCounts: opts.promptCounts }),
    },
    "127.0.0.1",
    0,
    opts.connectionLimits,
  );
  // The WS tunnel shares the API's HTTP port, as in the router.
  const ws: TunnelWsEndpoint = attachTunnelWs(api.server, hub, {
    maxMessageBytes: hub.timings.maxMessageBytes,
    onUpgraded: (socket) => api.connections.release(socket),
  });
  return {
    hub,
    routing,
    queue,
    api,
    baseURL: `http://127.0.0.1:${api.port}/v1`,
    grpcUrl: `grpc://127.0.0.1:${grpcPort}`,
    wsUrl: `ws://127.0.0.1:${api.port}/v1/tunnel`,
    usage,
    settling,
    keys,
    registry,
    probes,
    verdicts,
    setCatalogue: async (c) => {
      await loadCatalogueEncodings(encodings, c);
      catalogue = c;
      hub.setModelFilter(c);
    },
    close: async () => {
      hub.close("test over");
      ws.close();
      await api.close();
      grpc.forceShutdown();
    },
  };
}

/** A real `tensorclaw miner` child process. */
export interface MinerProcess {
  readonly child: ChildProcess;
  readonly hotkey: string;
  /** Output so far, for failure messages. */
  readonly stderr: () => string;
  /** SIGKILL: the miner dies without a goodbye. */
  kill(): Promise<void>;
}

/** Options of a miner under test. */
export interface MinerOptions {
  /** `--max-concurrency` (default 8); "default" passes none, as an operator who sets nothing. */
  readonly maxConcurrency?: number | "default";
  readonly contextLength?: number;
  readonly extraArgs?: readonly string[];
  /** Dial the WebSocket tunnel on the API's HTTP port instead of gRPC. */
  readonly transport?: "grpc" | "ws";
  /** The hotkey's mnemonic (default a fresh one): the same one twice is one miner with two processes. */
  readonly mnemonic?: string;
}

/**
 * Starts `tensorclaw miner` against the router's gRPC port and the backend,
 * and resolves once its session is live on the hub.
 */
export async function startMiner(
  router: RouterUnderTest,
  backendUrl: string,
  opts: MinerOptions = {},
): Promise<MinerProcess> {
  await initCrypto();
  const mnemonic = opts.mnemonic ?? mnemonicGenerate();
  const hotkey = (await hotkeyFromMnemonic(mnemonic)).address;
  // Sessions of this hotkey already live (another process of the same miner).
  const already = router.hub.sessions().filter((x) => x.hotkey === hotkey).length;
  const args = [
    CLI,
    "miner",
    ...minerDataDirArgs(),
    "--router",
    opts.transport === "ws" ? router.wsUrl : router.grpcUrl,
    "--transport",
    opts.transport ?? "grpc",
    "--backend",
    backendUrl,
    ...(opts.maxConcurrency === "default" ? [] : ["--max-concurrency", String(opts.maxConcurrency ?? 8)]),
    "--context-length",
    String(opts.contextLength ?? 0),
    "--log-level",
    "warn",
    ...(opts.extraArgs ?? []),
  ];
  const child = spawn(process.execPath, args, {
    env: { ...process.env, TENSORCLAW_MNEMONIC: mnemonic },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const exited = once(child, "exit");
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGKILL");
    await exited;
  };
  try {
    await Promise.race([
      waitForSessions(
        router.hub,
        (s) => s.filter((x) => x.hotkey === hotkey && x.models.length > 0).length > already,
        `the miner ${hotkey} to be live with models`,
      ),
      exited.then(([code]) => {
        throw new Error(`miner exited with ${String(code)}: ${err}`);
      }),
    ]);
  } catch (e) {
    await kill();
    throw e;
  }
  return { child, hotkey, stderr: () => err, kill };
}
