/**
 * Which models the miner offers, kept current by a periodic backend health
 * check. When the backend stops answering `/models`, the offer becomes empty
 * (routers then send no traffic instead of failing user requests); when it
 * answers again, the offer is restored. Listeners (the tunnels) hear about
 * every change and send a ModelListUpdate.
 */
import { type Clock, systemClock, type Timer } from "../common/clock.js";
import type { Logger } from "../common/logger.js";
import { CHAT_ONLY, kindsToProto, type ModelKind } from "../common/request-kinds.js";
import type { ModelOffer } from "../gen/tensorclaw/v1/tunnel.js";
import type { ConcurrencyPolicy } from "./adaptive-concurrency.js";
import type { Backend, DiscoveredModel } from "./backend/backend.js";

/** How offers are derived from what the backend reports. */
export interface OfferPolicy {
  /** `--models`; empty means "offer what the backend lists". */
  readonly configured: readonly string[];
  readonly maxConcurrency: number;
  /** `--context-length`; 0 means "what the backend says, else unknown". */
  readonly contextLength: number;
  /**
   * `--embedding-models`: models that serve embeddings (and nothing else).
   * Any other model serves what the backend says it does, else chat only:
   * an OpenAI-compatible server does not say, and a miner must never
   * advertise what its backend cannot do.
   */
  readonly embeddingModels?: readonly string[];
  /**
   * `--completion-models`: models that also serve legacy text completions
   * (`/v1/completions`) beside chat; `*` means every model that is not an
   * embedding model.
   */
  readonly completionModels?: readonly string[];
}

/**
 * The offers for a health-check result: nothing while the backend is down
 * (`undefined`), else the configured models (or every discovered one), with
 * the configured context length or the backend's, and the kinds each serves.
 */
export function offersFor(
  discovered: readonly DiscoveredModel[] | undefined,
  policy: OfferPolicy,
): ModelOffer[] {
  if (discovered === undefined) return [];
  const ids = policy.configured.length > 0 ? policy.configured : discovered.map((m) => m.id);
  const seen = new Set<string>();
  const out: ModelOffer[] = [];
  for (const id of ids) {
    if (seen.has(id)) continue;
    seen.add(id);
    const found = discovered.find((m) => m.id === id);
    out.push({
      id,
      maxConcurrency: policy.maxConcurrency,
      contextLength: policy.contextLength > 0 ? policy.contextLength : (found?.contextLength ?? 0),
      kinds: kindsToProto(kindsOf(id, found, policy)),
    });
  }
  return out;
}

/** What a model serves: as configured, else as the backend says, else chat only. */
function kindsOf(id: string, found: DiscoveredModel | undefined, policy: OfferPolicy): readonly ModelKind[] {
  if (policy.embeddingModels?.includes(id) === true) return ["embedding"];
  const c = policy.completionModels;
  if (c !== undefined && (c.includes(id) || c.includes("*"))) return ["chat", "completion"];
  return found?.kinds ?? CHAT_ONLY;
}

/** True when two offer lists are equal, order included. */
export function sameOffers(a: readonly ModelOffer[], b: readonly ModelOffer[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (m, i) =>
        m.id === b[i]?.id &&
        m.maxConcurrency === b[i]?.maxConcurrency &&
        m.contextLength === b[i]?.contextLength &&
        m.kinds.join() === b[i]?.kinds.join(),
    )
  );
}

/**
 * Fewest ms between two offers sent for a change of learned concurrency
 * alone. The limit moves on every request served while it grows (slow
 * start), and each offer is a ModelListUpdate to every router, which then
 * re-plans its routing: changes closer together than this are merged into
 * one, sent when the gap is over. Model list changes go at once.
 */
export const CONCURRENCY_UPDATE_GAP_MS = 250;

/** Settings of the catalog. */
export interface ModelCatalogOptions {
  readonly backend: Backend;
  readonly policy: OfferPolicy;
  /** Time between health checks. */
  readonly intervalMs: number;
  /** How long one health check may take. */
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Timers of the checks; default the system clock. */
  readonly clock?: Clock;
  /**
   * What each model advertises as its concurrency (miner/adaptive-concurrency.ts);
   * absent: `policy.maxConcurrency` for every model.
   */
  readonly concurrency?: ConcurrencyPolicy;
}

/** The live model offer. */
export class ModelCatalog {
  readonly #o: ModelCatalogOptions;
  readonly #listeners = new Set<(offers: readonly ModelOffer[]) => void>();
  /** The offers of the last health check, before the concurrency policy. */
  #checked: readonly ModelOffer[] = [];
  #offers: readonly ModelOffer[] = [];
  #offConcurrency: (() => void) | undefined;
  /** When an offer last went out for a concurrency change (clock ms), and the merged one due. */
  #concurrencySentAtMs = Number.NEGATIVE_INFINITY;
  #concurrencyDue: Timer | undefined;
  #healthy: boolean | undefined;
  #timer: Timer | undefined;
  #inFlight: AbortController | undefined;
  #stopped = false;
  readonly #clock: Clock;

  constructor(opts: ModelCatalogOptions) {
    this.#o = opts;
    this.#clock = opts.clock ?? systemClock;
    this.#offConcurrency = opts.concurrency?.onChange(() => this.#concurrencyChanged());
  }

  /** The models offered now. */
  offers(): readonly ModelOffer[] {
    return this.#offers;
  }

  /** Calls `fn` after every change of the offer. Returns an unsubscribe function. */
  onChange(fn: (offers: readonly ModelOffer[]) => void): () => void {
    this.#listeners.add(fn);
    return () => this.#listeners.delete(fn);
  }

  /** Runs one health check now and applies the result. */
  async refresh(): Promise<void> {
    const ac = new AbortController();
    this.#inFlight = ac;
    const timer = this.#clock.setTimeout(
      () => ac.abort(new Error("health check timed out")),
      this.#o.timeoutMs,
    );
    let discovered: DiscoveredModel[] | undefined;
    let why = "";
    try {
      discovered = await this.#o.backend.listModels(ac.signal);
    } catch (err) {
      why = err instanceof Error ? err.message : String(err);
    } finally {
      this.#clock.clearTimeout(timer);
      this.#inFlight = undefined;
    }
    if (this.#stopped) return;
    const healthy = discovered !== undefined;
    if (healthy !== this.#healthy) {
      if (healthy) this.#o.logger.info({ backend: this.#o.backend.description }, "backend up");
      else
        this.#o.logger.warn(
          { backend: this.#o.backend.description, reason: why },
          "backend down: offering no models",
        );
      this.#healthy = healthy;
    }
    this.#checked = offersFor(discovered, this.#o.policy);
    this.#apply(true);
  }

  /** A learned limit moved: offered now, or merged with what follows it within the gap. */
  #concurrencyChanged(): void {
    if (this.#concurrencyDue !== undefined || this.#stopped) return;
    const wait = this.#concurrencySentAtMs + CONCURRENCY_UPDATE_GAP_MS - this.#clock.now();
    if (wait <= 0) {
      this.#concurrencySentAtMs = this.#clock.now();
      this.#apply(false);
      return;
    }
    this.#concurrencyDue = this.#clock.setTimeout(() => {
      this.#concurrencyDue = undefined;
      this.#concurrencySentAtMs = this.#clock.now();
      this.#apply(false);
    }, wait);
  }

  /** Applies the concurrency policy to the checked offers and tells the listeners of a change. */
  #apply(checked: boolean): void {
    const c = this.#o.concurrency;
    const next =
      c === undefined ? this.#checked : this.#checked.map((m) => ({ ...m, maxConcurrency: c.limit(m.id) }));
    if (sameOffers(next, this.#offers)) return;
    this.#offers = next;
    if (checked) this.#o.logger.info({ models: next.map((m) => m.id) }, "models changed");
    else {
      this.#o.logger.debug(
        { concurrency: Object.fromEntries(next.map((m) => [m.id, m.maxConcurrency])) },
        "advertised concurrency changed",
      );
    }
    for (const fn of this.#listeners) fn(next);
  }

  /** Starts the periodic checks (the first one runs after `intervalMs`; call `refresh` first). */
  start(): void {
    const tick = () => {
      this.#timer = this.#clock.setTimeout(() => {
        void this.refresh().finally(() => {
          if (!this.#stopped) tick();
        });
      }, this.#o.intervalMs);
    };
    tick();
  }

  /** Stops checking. */
  stop(): void {
    this.#stopped = true;
    this.#offConcurrency?.();
    this.#clock.clearTimeout(this.#timer);
    this.#clock.clearTimeout(this.#concurrencyDue);
    this.#inFlight?.abort(new Error("stopped"));
  }
}
