import { type Clock, systemClock, type Timer } from "../../common/clock.js";
import type { Logger } from "../../common/logger.js";
import { ModelCatalogue } from "./catalogue.js";
import type { CatalogueStore } from "./store.js";

/** How often a running router checks whether the catalogue changed. */
export const DEFAULT_CATALOGUE_REFRESH_MS = 2_000;

/**
 * Keeps the router's current catalogue snapshot: reads the store at start,
 * then polls its version and reads it again when it changes, so every
 * replica picks up `tensorclaw router models …` within one refresh. A store
 * that cannot be read keeps the last snapshot (logged once per outage).
 */
export class CatalogueWatcher {
  readonly #store: CatalogueStore;
  readonly #open: boolean;
  readonly #log: Logger;
  readonly #listeners: ((c: ModelCatalogue) => void)[] = [];
  #current: ModelCatalogue;
  #version: string | undefined;
  readonly #clock: Clock;
  #timer: Timer | undefined;
  #failing = false;
  #refreshing: Promise<boolean> | undefined;

  constructor(store: CatalogueStore, open: boolean, logger: Logger, clock: Clock = systemClock) {
    this.#store = store;
    this.#clock = clock;
    this.#open = open;
    this.#log = logger;
    this.#current = ModelCatalogue.empty(open);
  }

  /** The catalogue in force now. */
  get current(): ModelCatalogue {
    return this.#current;
  }

  /** Calls `fn` with each new snapshot after it replaced the previous one. */
  onChange(fn: (c: ModelCatalogue) => void): void {
    this.#listeners.push(fn);
  }

  /** Reads the catalogue once, then every `refreshMs`. */
  async start(refreshMs: number = DEFAULT_CATALOGUE_REFRESH_MS): Promise<void> {
    await this.refresh();
    this.#timer = this.#clock.setInterval(() => void this.refresh(), refreshMs, { unref: true });
  }

  /** Checks the version and reloads when it changed; resolves to whether the snapshot changed. */
  refresh(): Promise<boolean> {
    // One refresh at a time: a slow store must not pile reads up.
    this.#refreshing ??= this.#refresh().finally(() => {
      this.#refreshing = undefined;
    });
    return this.#refreshing;
  }

  async #refresh(): Promise<boolean> {
    try {
      const version = await this.#store.version();
      if (version === this.#version) return false;
      const { entries, skipped } = await this.#store.read();
      this.#version = version;
      this.#current = new ModelCatalogue(entries, this.#open);
      if (this.#failing) this.#log.info("model catalogue readable again");
      this.#failing = false;
      if (skipped > 0) this.#log.warn({ skipped }, "model catalogue: invalid entries left out");
      if (this.#current.conflicts.length > 0) {
        this.#log.warn(
          { aliases: this.#current.conflicts },
          "model catalogue: aliases naming another model ignored",
        );
      }
      this.#log.info(
        { models: entries.length, open: this.#open, version },
        this.#current.closedAndEmpty
          ? "model catalogue is empty and closed: no model is routable (add models with `tensorclaw router models set`, or run with --open-catalogue)"
          : "model catalogue loaded",
      );
      for (const fn of this.#listeners) fn(this.#current);
      return true;
    } catch (err) {
      if (!this.#failing) this.#log.warn({ err }, "cannot read the model catalogue; keeping the last one");
      this.#failing = true;
      return false;
    }
  }

  /** Stops polling. */
  stop(): void {
    this.#clock.clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
