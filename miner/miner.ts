/**
 * The miner program, assembled: one backend and one model catalog shared by
 * one TunnelClient per router. Everything that touches the outside world
 * (transports, clock, randomness, logger) can be injected, so tests run the
 * real thing in-process against a real router.
 */

import { type Clock, systemClock } from "../common/clock.js";
import type { FrameChannel } from "../common/frame-channel.js";
import type { Hotkey } from "../common/identity.js";
import { type Logger, silentLogger } from "../common/logger.js";
import { AdaptiveConcurrency, type ConcurrencyPolicy, FixedConcurrency } from "./adaptive-concurrency.js";
import type { Backend } from "./backend/backend.js";
import { DemoBackend } from "./backend/demo.js";
import { OpenAIHttpBackend } from "./backend/openai.js";
import type { MinerConfig } from "./config.js";
import { ModelCatalog } from "./model-catalog.js";
import { type BackoffPolicy, DEFAULT_BACKOFF } from "./tunnel/backoff.js";
import { TunnelClient } from "./tunnel/client.js";
import { type Endpoint, planRouters } from "./tunnel/endpoints.js";
import { DEFAULT_MAX_RECEIVE_BYTES, dialGrpc, trustedRoots } from "./tunnel/grpc.js";
import type { RouterPins } from "./tunnel/router-pins.js";
import { dialWs } from "./tunnel/ws.js";

/** Software version sent in the Hello. */
export const MINER_SOFTWARE_VERSION = "tensorclaw-miner/0.1.0";

/** Everything a miner needs besides its configuration. */
export interface MinerDeps {
  readonly hotkey: Hotkey;
  /** Router ids pinned per address (the data directory's pin file; memory in tests). */
  readonly routerPins: RouterPins;
  readonly logger?: Logger;
  /** Overrides the backend built from `config.backend`. */
  readonly backend?: Backend;
  readonly backoff?: BackoffPolicy;
  readonly random?: () => number;
  /** Wall clock and timers (handshakes, silence watch, backoff, deadlines, health checks). */
  readonly clock?: Clock;
  /** Opens a channel; default: real gRPC / WebSocket dials. */
  readonly dial?: (endpoint: Endpoint, maxReceiveBytes: number) => FrameChannel;
  /** PEM of an extra CA to trust for grpcs:// and wss:// (besides the public roots). */
  readonly extraCaPem?: string;
}

/** The settings a miner reads (a subset of MinerConfig, so tests can build one by hand). */
export type MinerSettings = Partial<
  Pick<MinerConfig, "embeddingModels" | "completionModels" | "fixedConcurrency">
> &
  Pick<
    MinerConfig,
    | "router"
    | "backend"
    | "backendKey"
    | "models"
    | "maxConcurrency"
    | "contextLength"
    | "transport"
    | "healthIntervalMs"
    | "connectTimeoutMs"
  >;

/** Longest a backend health check may take (shorter when checks run more often). */
const MAX_HEALTH_CHECK_TIMEOUT_MS = 5000;

/** The backend named by `--backend`: the demo model or an OpenAI-compatible URL. */
export function backendFromSettings(s: Pick<MinerSettings, "backend" | "backendKey">): Backend {
  return s.backend === "demo"
    ? new DemoBackend()
    : new OpenAIHttpBackend({ baseUrl: s.backend, apiKey: s.backendKey });
}

function realDial(extraCaPem: string | undefined) {
  const trustedCas = extraCaPem === undefined ? undefined : trustedRoots(extraCaPem);
  return (endpoint: Endpoint, maxReceiveBytes: number): FrameChannel =>
    endpoint.transport === "grpc"
      ? dialGrpc(endpoint.target, { maxReceiveBytes, ...(trustedCas === undefined ? {} : { trustedCas }) })
      : dialWs(endpoint.url, { maxReceiveBytes, ...(trustedCas === undefined ? {} : { trustedCas }) });
}

/** A running miner. */
export class Miner {
  readonly backend: Backend;
  readonly catalog: ModelCatalog;
  /** What each model advertises as its concurrency (learned by default). */
  readonly concurrency: ConcurrencyPolicy;
  /** One per router, in `--router` order. */
  readonly tunnels: readonly TunnelClient[];
  readonly #log: Logger;
  #offChange: (() => void) | undefined;

  constructor(settings: MinerSettings, deps: MinerDeps) {
    const log = deps.logger ?? silentLogger();
    const clock = deps.clock ?? systemClock;
    this.#log = log;
    this.backend = deps.backend ?? backendFromSettings(settings);
    this.concurrency =
      settings.fixedConcurrency === true
        ? new FixedConcurrency(settings.maxConcurrency)
        : new AdaptiveConcurrency({ max: settings.maxConcurrency });
    this.catalog = new ModelCatalog({
      backend: this.backend,
      policy: {
        configured: settings.models,
        maxConcurrency: settings.maxConcurrency,
        contextLength: settings.contextLength,
        embeddingModels: settings.embeddingModels ?? [],
        completionModels: settings.completionModels ?? [],
      },
      intervalMs: settings.healthIntervalMs,
      timeoutMs: Math.min(settings.healthIntervalMs, MAX_HEALTH_CHECK_TIMEOUT_MS),
      logger: log,
      clock,
      concurrency: this.concurrency,
    });
    const dial = deps.dial ?? realDial(deps.extraCaPem);
    this.tunnels = planRouters(settings.router, settings.transport).map(
      (plan) =>
        new TunnelClient({
          plan,
          dial: (ep) => dial(ep, DEFAULT_MAX_RECEIVE_BYTES),
          session: {
            hotkey: deps.hotkey,
            backend: this.backend,
            offers: () => this.catalog.offers(),
            concurrency: this.concurrency,
            clock,
            softwareVersion: MINER_SOFTWARE_VERSION,
            handshakeTimeoutMs: settings.connectTimeoutMs,
          },
          pins: deps.routerPins,
          backoff: deps.backoff ?? DEFAULT_BACKOFF,
          random: deps.random ?? Math.random,
          logger: log,
        }),
    );
  }

  /** Checks the backend once (so the first Hello carries the models), then connects everywhere. */
  async start(): Promise<void> {
    this.#log.info({ backend: this.backend.description, routers: this.tunnels.length }, "miner starting");
    await this.catalog.refresh();
    this.#offChange = this.catalog.onChange((offers) => {
      for (const t of this.tunnels) t.updateModels(offers);
    });
    this.catalog.start();
    for (const t of this.tunnels) t.start();
  }

  /**
   * Closes every tunnel and stops the health checks. With `graceMs` > 0,
   * tunnels first withdraw their models and let in-flight requests finish
   * for up to that long (what SIGTERM does), so a restart loses no work.
   */
  async stop(graceMs = 0): Promise<void> {
    this.#offChange?.();
    this.catalog.stop();
    await Promise.all(this.tunnels.map((t) => t.stop(graceMs)));
    this.#log.info("miner stopped");
  }
}
