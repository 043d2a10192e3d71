import { readFileSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import { collectDefaultMetrics, Histogram, Registry } from "prom-client";
import { TensorClawError } from "../common/errors.js";
import { initCrypto } from "../common/identity.js";
import type { Logger } from "../common/logger.js";
import { replicaWaitOf } from "../common/redis-batch.js";
import { openRedis, type RedisClient } from "../common/redis-connect.js";
import { DEFAULT_ROUTER_ID } from "../common/router-id.js";
import { Encodings } from "../common/tokens/encodings.js";
import { ValidatorAuth } from "../common/validator-call/server.js";
import { MinerDirectoryServiceService } from "../gen/tensorclaw/v1/directory.js";
import { UsageReportServiceService } from "../gen/tensorclaw/v1/usage.js";
import { startAdmission } from "./admission.js";
import { defaultConnectionLimits, limitConnections } from "./api/connection-limits.js";
import { boundSlowClients } from "./api/http.js";
import { capacityQueue, createApiHandler } from "./api/server.js";
import { businessApiDeps } from "./api/setup.js";
import { resolveUserSalt } from "./api/user-salt.js";
import type { BillingStore } from "./billing/billing.js";
import { startRouterDeposits } from "./billing/deposits/start.js";
import { EmbeddedBilling } from "./billing/embedded.js";
import { LedgerWithBilling } from "./billing/ledger-with-billing.js";
import { RedisBilling } from "./billing/redis.js";
import { loadCatalogueEncodings } from "./catalogue/catalogue.js";
import { syncLedgerTiers } from "./catalogue/ledger-tiers.js";
import { catalogueFileIn, migrateLegacyTiers } from "./catalogue/open-store.js";
import { FileCatalogueStore } from "./catalogue/store-file.js";
import { RedisCatalogueStore } from "./catalogue/store-redis.js";
import { CatalogueWatcher } from "./catalogue/watcher.js";
import { corsOrigins, type RouterConfig } from "./config.js";
import { startConsole } from "./console/console-start.js";
import { EmbeddedLedger } from "./ledger/embedded.js";
import type { UsageLedger } from "./ledger/ledger.js";
import { DEFAULT_LEDGER_PREFIX, LEDGER_REDIS_OPTIONS, RedisLedger } from "./ledger/redis.js";
import { RoutingBook } from "./routing/book.js";
import { directoryService } from "./services/directory.js";
import { addHealthAndReflection } from "./services/health.js";
import { addProbeService } from "./services/probe.js";
import { TrafficShapeRecorder } from "./services/traffic-shape.js";
import { usageService } from "./services/usage.js";
import { VerdictBook } from "./services/verdicts.js";
import { addTunnelService, tunnelGrpcServerOptions } from "./tunnel/grpc.js";
import { TunnelHub } from "./tunnel/hub.js";
import { attachTunnelWs } from "./tunnel/ws.js";
import { UsageRecorder } from "./usage/recorder.js";
import { newUsageOrigin, UsageSequencer } from "./usage/sequence.js";
import { UsageSpool } from "./usage/spool.js";

/** A router that is listening on its two ports. */
export interface RunningRouter {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly hub: TunnelHub;
  /** Per (hotkey, model) routing state: learned concurrency, breakers, outcomes. */
  readonly routing: RoutingBook;
  /**
   * Graceful stop: health goes NOT_SERVING, miners get Drain and in-flight
   * requests finish (bounded by --drain-grace-ms), then the servers close
   * and queued usage is written to the ledger (or the spool).
   */
  close(): Promise<void>;
}

/**
 * The usage ledger and, beside it in the same Redis, API keys' balances,
 * holds and spend; both wait for `--redis-wait-replicas` replicas.
 */
export function redisStores(
  client: RedisClient,
  cfg: Pick<
    RouterConfig,
    "bucketS" | "retentionS" | "generationRetentionS" | "redisWaitReplicas" | "redisWaitTimeoutMs"
  >,
): { ledger: RedisLedger; billing: RedisBilling } {
  const options = ledgerOptionsOf(cfg);
  const replicaWait = replicaWaitOf(cfg);
  return {
    ledger: new RedisLedger(client, options, DEFAULT_LEDGER_PREFIX, replicaWait),
    billing: new RedisBilling(
      client,
      options,
      DEFAULT_LEDGER_PREFIX,
      replicaWait,
      cfg.generationRetentionS * 1000,
    ),
  };
}

/** The ledger's (and billing's) bucket and retention, from `--bucket-s` and `--retention-s`. */
function ledgerOptionsOf(cfg: Pick<RouterConfig, "bucketS" | "retentionS">) {
  return { bucketMs: cfg.bucketS * 1000, retentionMs: cfg.retentionS * 1000 };
}

/** Files the router keeps under --data-dir. */
export function routerPaths(dataDir: string) {
  return {
    ledger: join(dataDir, "ledger.jsonl"),
    billing: join(dataDir, "billing.jsonl"),
    keys: join(dataDir, "api-keys.json"),
    spool: join(dataDir, "spool"),
    userSalt: join(dataDir, "user-salt"),
    catalogue: catalogueFileIn(dataDir),
  };
}

function listenHttp(server: HttpServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === "EADDRINUSE" ? "is already in use" : `cannot be used (${err.code ?? err.message})`;
      reject(
        new TensorClawError("config_invalid", `HTTP port ${port} ${why}: choose another with --http-port`),
      );
    };
    server.once("error", onError);
    server.listen(port, host, () => {
      server.off("error", onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function bindGrpc(server: GrpcServer, host: string, port: number, creds: ServerCredentials): Promise<number> {
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => {
    server.bindAsync(address, creds, (err, bound) => {
      if (err !== null) {
        reject(
          new TensorClawError(
            "config_invalid",
            `gRPC port ${port} cannot be used (${err.message}): choose another with --grpc-port`,
          ),
        );
        return;
      }
      resolve(bound);
    });
  });
}

/** How long in-flight gRPC calls may finish on shutdown before the server is forced down. */
const GRPC_SHUTDOWN_GRACE_MS = 2000;
/** Shortest interval between two "redis unavailable" warnings. */
const REDIS_WARN_INTERVAL_MS = 10_000;

function shutdownGrpc(server: GrpcServer, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/**
 * Builds and starts the router: ledger (Redis or embedded) behind a usage
 * recorder with a durable spool, admission (allow-lists or the chain), the
 * tunnel hub on both transports, the validator-facing services, health and
 * reflection on the gRPC port, and the Business API on the HTTP port.
 */
export async function startRouter(cfg: RouterConfig, logger: Logger): Promise<RunningRouter> {
  const paths = routerPaths(cfg.dataDir);
  const ledgerOptions = ledgerOptionsOf(cfg);
  // The WASM sr25519 verifier: without it every hello and validator call is checked by the
  // pure-JS fallback (~2.2 ms against ~0.3 ms each).
  await initCrypto();
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const fn of cleanups.reverse()) await fn();
  };
  try {
    let redis: RedisClient | undefined;
    let ledger: UsageLedger;
    let billing: BillingStore;
    let spool: UsageSpool | undefined;
    if (cfg.redisUrl !== undefined) {
      // One server or a cluster; ioredis is loaded only now (the embedded ledger does without it).
      const client = await openRedis(cfg.redisUrl, LEDGER_REDIS_OPTIONS);
      redis = client;
      let lastWarn = 0;
      client.on("error", (err: Error) => {
        // ioredis reconnects by itself; one line per interval is enough.
        if (Date.now() - lastWarn > REDIS_WARN_INTERVAL_MS) {
          lastWarn = Date.now();
          logger.warn({ err: err.message }, "redis unavailable; usage goes to the spool until it is back");
        }
      });
      cleanups.push(() => client.disconnect());
      ({ ledger, billing } = redisStores(client, cfg));
      spool = await UsageSpool.open({ dir: paths.spool });
      const opened = spool;
      cleanups.push(() => opened.close());
    } else {
      ledger = await EmbeddedLedger.open({ path: paths.ledger, nowMs: Date.now(), ...ledgerOptions });
      billing = await EmbeddedBilling.open({
        path: paths.billing,
        nowMs: Date.now(),
        generationRetentionMs: cfg.generationRetentionS * 1000,
        ...ledgerOptions,
      });
    }
    const ownedLedger = ledger;
    cleanups.push(() => ownedLedger.close());
    // Closed after the usage recorder (cleanups run in reverse): its last events settle here.
    const ownedBilling = billing;
    cleanups.push(() => ownedBilling.close());
    // The operator's model catalogue: which models are routed, their tiers,
    // tokenizers and prices. In Redis it shares the ledger's tier keys; the
    // embedded ledger gets the catalogue's tiers copied in on every change.
    const catalogueStore =
      redis === undefined
        ? new FileCatalogueStore(paths.catalogue)
        : new RedisCatalogueStore(redis, DEFAULT_LEDGER_PREFIX);
    if (catalogueStore instanceof FileCatalogueStore) {
      const migrated = await migrateLegacyTiers(catalogueStore, paths.ledger, Date.now());
      if (migrated > 0) logger.info({ models: migrated }, "tier entries brought into the model catalogue");
    }
    const catalogue = new CatalogueWatcher(catalogueStore, cfg.openCatalogue, logger);
    // Each catalogue tokenizer is loaded before requests need it (the router counts tokens itself).
    const encodings = new Encodings();
    catalogue.onChange((c) => {
      loadCatalogueEncodings(encodings, c).catch((err: unknown) =>
        logger.error({ err }, "cannot load a catalogue tokenizer; credit is bounded by bytes until it loads"),
      );
    });
    if (redis === undefined) {
      catalogue.onChange((c) => {
        syncLedgerTiers(ownedLedger, c, Date.now()).catch((err: unknown) =>
          logger.warn({ err }, "cannot copy the catalogue's tiers into the ledger"),
        );
      });
    }
    await catalogue.start();
    cleanups.push(() => catalogue.stop());
    await loadCatalogueEncodings(encodings, catalogue.current);
    // The `user` hash's secret, the same on every replica (waits for Redis up to 5 s).
    const { salt: userSalt, origin } = await resolveUserSalt({
      configured: cfg.userSalt,
      redis,
      file: paths.userSalt,
      logger,
    });
    logger.info({ origin }, "user salt ready");
    // Charges travel with usage: settled with each batch, spooled and replayed with it.
    const recorder = new UsageRecorder({ ledger: new LedgerWithBilling(ledger, billing), spool, logger });
    cleanups.push(() => recorder.close());
    // Each usage event gets this process's origin and a per-miner seq: the
    // ledger's compact idempotency key (sequence.ts).
    const usageSink = new UsageSequencer(recorder, newUsageOrigin());
    logger.info({ usageOrigin: usageSink.origin }, "usage origin drawn");

    // Bound once the hub exists: after each metagraph refresh, tunnels of
    // hotkeys that left the subnet are drained.
    let afterRefresh = (): void => {};
    const admission = await startAdmission({
      chain: cfg.chain,
      netuid: cfg.netuid,
      minersAllow: cfg.minersAllow,
      validators: cfg.validators,
      logger,
      onRefreshed: () => afterRefresh(),
    });
    cleanups.push(() => admission.stop());

    const hub = new TunnelHub({
      routerId: cfg.routerId,
      logger,
      admit: (hotkey) => admission.policy.admitMiner(hotkey),
      timings: { drainGraceMs: Math.max(1, cfg.drainGraceMs) },
      limits: {
        maxTunnelsPerHotkey: cfg.maxTunnelsPerHotkey,
        maxPendingHandshakesPerAddress: cfg.maxPendingHandshakesPerAddress,
        helloChecksPerSecond: cfg.helloChecksPerSecond,
      },
    });
    hub.setModelFilter(catalogue.current);
    catalogue.onChange((c) => hub.setModelFilter(c));
    cleanups.push(() => hub.close());
    afterRefresh = () => void hub.revokeUnadmitted("the hotkey is no longer registered on the subnet");
    const maxMessageBytes = hub.timings.maxMessageBytes;

    // The Business API's parts (built first: probes go by its request rules).
    const registry = new Registry();
    // Node's own figures (CPU, memory, event-loop delay, GC, handles) beside the router's.
    collectDefaultMetrics({ register: registry });
    // Validators' verdicts: a FAILED (hotkey, model) gets no user traffic from this router.
    const verdicts = new VerdictBook();
    const routing = new RoutingBook({
      now: () => performance.now(),
      random: Math.random,
      barred: (model) => verdicts.excludedHotkeys(model),
    });
    /** True from the start of a shutdown: /readyz answers 503 while requests finish. */
    let draining = false;
    const liveMiners = () => hub.sessions().filter((x) => x.state === "active").length;
    const deps = businessApiDeps({
      dispatcher: hub,
      usage: usageSink,
      registry,
      logger,
      redis,
      noAuth: cfg.noAuth,
      // Ready: usage reaches the ledger or the spool, not draining, and (unless told otherwise)
      // at least one miner is live, so a load balancer sends users only where they can be served.
      ready: () => recorder.ready() && !draining && (cfg.readyWithoutMiners || liveMiners() > 0),
      readyDetail: () => ({
        live_miners: liveMiners(),
        draining: draining ? 1 : 0,
        usage_spool_depth: recorder.spoolDepth(),
        ledger_lag_seconds: recorder.lagMs() / 1000,
      }),
      keysFile: paths.keys,
      metricsSources: {
        ledgerLagSeconds: () => recorder.lagMs() / 1000,
        spoolDepth: () => recorder.spoolDepth(),
      },
      chat: { maxBodyBytes: cfg.maxBodyBytes, maxQueue: cfg.maxQueue, queueTimeoutMs: cfg.queueTimeoutMs },
      userSalt,
      metricsToken: cfg.metricsToken,
      corsOrigins: corsOrigins(cfg),
      maxConcurrentPerKey: cfg.maxConcurrentPerKey,
      catalogue: () => catalogue.current,
      encodings,
      routing,
      billing,
    });
    // TAO deposits credit keys (only with --chain, --credits-per-tao and the treasury mnemonic).
    const deposits = await startRouterDeposits(cfg, { billing, keys: deps.keys, logger });
    if (deposits !== undefined) cleanups.push(() => deposits.stop());

    // gRPC: tunnel, validator services, health, reflection.
    const grpcServer = new GrpcServer(tunnelGrpcServerOptions({ maxMessageBytes }));
    cleanups.push(() => grpcServer.forceShutdown());
    addTunnelService(grpcServer, hub);
    const auth = new ValidatorAuth({
      routerId: cfg.routerId,
      authorize: (hotkey) => admission.policy.authorizeValidator(hotkey),
      logger,
    });
    // The Business API records the shape of user requests; validators read it to shape their probes.
    const trafficShape = new TrafficShapeRecorder();
    // How long probes wait for a moment when a user request would have gone to their tunnel.
    const probeHold = new Histogram({
      name: "tensorclaw_probe_arrival_hold_seconds",
      help: "Time a probe was held before dispatch, by how the hold ended (user_like, unreachable, expired, queued, full)",
      labelNames: ["outcome"] as const,
      buckets: [0.001, 0.005, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2],
      registers: [registry],
    });
    // Users and probes of full tunnels wait for a free slot in one queue.
    const queue = capacityQueue(deps);
    addProbeService(grpcServer, auth, {
      dispatcher: hub,
      routing,
      queue,
      onArrivalHold: (ms, outcome) => probeHold.observe({ outcome }, ms / 1000),
      now: () => performance.now(),
      random: Math.random,
      logger,
      trafficShape,
      chat: deps.options,
      catalogue: () => catalogue.current,
      encodings,
      verdicts,
    });
    const usage = auth.wrap(
      UsageReportServiceService,
      usageService({ ledger, logger, countFreeTraffic: cfg.countFreeTraffic }),
    );
    grpcServer.addService(usage.definition, usage.implementation);
    const directoryImpl = directoryService({
      sessions: () => hub.sessions(),
      servingSinceMs: Date.now(),
      logger,
    });
    if (cfg.publicDirectory) {
      grpcServer.addService(MinerDirectoryServiceService, directoryImpl);
    } else {
      const directory = auth.wrap(MinerDirectoryServiceService, directoryImpl);
      grpcServer.addService(directory.definition, directory.implementation);
    }
    const health = addHealthAndReflection(grpcServer);

    const tls =
      cfg.tlsCert !== undefined && cfg.tlsKey !== undefined
        ? { cert: readFileSync(cfg.tlsCert), key: readFileSync(cfg.tlsKey) }
        : undefined;
    const grpcCreds =
      tls === undefined
        ? ServerCredentials.createInsecure()
        : ServerCredentials.createSsl(null, [{ cert_chain: tls.cert, private_key: tls.key }], false);
    const grpcPort = await bindGrpc(grpcServer, cfg.host, cfg.grpcPort, grpcCreds);

    // HTTP: Business API, health, readiness, metrics, WebSocket tunnel, web console.
    const webConsole = cfg.noConsole
      ? undefined
      : startConsole({
          hub,
          routing,
          verdicts,
          ledger,
          catalogue: () => catalogue.current,
          logger,
          keys: deps.keys,
          limiter: deps.limiter,
          billing,
          // Each key's deposit address, when this router credits deposits (startRouterDeposits' condition).
          depositMnemonic: deposits === undefined ? undefined : cfg.treasuryMnemonic,
        });
    const handler = createApiHandler({
      ...deps,
      queue,
      trafficShape,
      ...(webConsole === undefined ? {} : { console: webConsole.routes }),
    });
    const httpServer =
      tls === undefined
        ? createHttpServer(handler)
        : createHttpsServer({ cert: tls.cert, key: tls.key }, handler);
    boundSlowClients(httpServer);
    const auto = defaultConnectionLimits();
    const connections = limitConnections(
      httpServer,
      {
        total: cfg.maxConnections === 0 ? auto.total : cfg.maxConnections,
        perAddress: cfg.maxConnectionsPerAddress,
      },
      logger,
      tls === undefined ? "connection" : "secureConnection",
    );
    const ws = attachTunnelWs(httpServer, hub, {
      maxMessageBytes,
      // A tunnel's socket leaves HTTP: the tunnel caps count it, not the connection caps.
      onUpgraded: (socket) => connections.release(socket),
    });
    cleanups.push(() => ws.close());
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          httpServer.close(() => resolve());
          httpServer.closeAllConnections();
        }),
    );
    const httpPort = await listenHttp(httpServer, cfg.host, cfg.httpPort);
    // Bundled once the router listens, so that it never delays serving.
    webConsole?.build();
    logger.info(
      { httpPort, grpcPort, ledger: redis === undefined ? "embedded" : "redis", routerId: cfg.routerId },
      "router listening",
    );
    if (cfg.routerId === DEFAULT_ROUTER_ID) {
      // Miners and validators sign for this id: every router left at the default can replay the others' hellos.
      logger.warn(
        { routerId: cfg.routerId },
        "--router-id is the default: set a unique one, so that what miners and validators sign for this router is good for no other",
      );
    }

    if (cfg.countFreeTraffic) {
      logger.warn(
        "--count-free-traffic: free traffic earns business points (a dev setting, not for a subnet)",
      );
    }

    let closing: Promise<void> | undefined;
    return {
      httpPort,
      grpcPort,
      hub,
      routing,
      close: () => {
        closing ??= (async () => {
          draining = true;
          health.shutdown();
          await hub.drain();
          httpServer.closeIdleConnections();
          await shutdownGrpc(grpcServer, GRPC_SHUTDOWN_GRACE_MS);
          await cleanup();
        })();
        return closing;
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
