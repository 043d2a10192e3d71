import { TensorClawError } from "../../common/errors.js";
import type { ModelCatalogue } from "../catalogue/catalogue.js";
import type { UsageLedger, UsageReport } from "../ledger/ledger.js";
import type { RoutingStats } from "../routing/book.js";
import type { SessionView } from "../tunnel/types.js";
import {
  addRow,
  byHotkey,
  type CumulativeTotal,
  emptySum,
  figures,
  hotkeyState,
  hourlySeries,
  median,
  type TrafficSum,
} from "./console-figures.js";
import type {
  MinerBody,
  MinerStateName,
  ModelStatsBody,
  NetworkBody,
  NetworkMiner,
  NetworkModel,
  PricePerMillion,
  SeriesPoint,
} from "./console-types.js";

/** What the console's endpoints read: the router's own live state, injected. */
export interface ConsoleSources {
  readonly sessions: () => readonly SessionView[];
  readonly catalogue: () => ModelCatalogue;
  /** The routing book's per (hotkey, model) view. */
  readonly routing: () => readonly RoutingStats[];
  /** (hotkey, model) pairs a validator's audit failed. */
  readonly auditFailed: () => readonly { hotkey: string; model: string }[];
  readonly ledger: UsageLedger;
  /** Wall clock, Unix ms. */
  readonly clock: () => number;
}

const HOUR_MS = 3_600_000;
/** The window the pages show. */
export const CONSOLE_WINDOW_MS = 24 * HOUR_MS;
/**
 * How long a ledger read is reused: pages poll every few seconds and any
 * number of people may have them open, but the ledger is read at most this
 * often (a chart's 24 reads, at most once per scope and period).
 */
export const REPORT_TTL_MS = 4_000;
export const SERIES_TTL_MS = 30_000;

interface Cached<T> {
  readonly atMs: number;
  readonly value: Promise<T>;
}

/**
 * The console's data: public facts about the network, built from the tunnel
 * hub's sessions, the catalogue, the routing book and the usage ledger.
 * Nothing here names a session id, an address or an API key.
 */
export class ConsoleData {
  readonly #s: ConsoleSources;
  #report: Cached<UsageReport> | undefined;
  readonly #series = new Map<string, Cached<SeriesPoint[]>>();

  constructor(sources: ConsoleSources) {
    this.#s = sources;
  }

  /** `GET /api/v1/network`. */
  async network(): Promise<NetworkBody> {
    const report = await this.#usage();
    const sessions = this.#s.sessions();
    const catalogue = this.#s.catalogue();
    const routing = this.#s.routing();
    const perModel = new Map<string, TrafficSum>();
    const perMiner = new Map<string, TrafficSum>();
    for (const m of report.miners) {
      for (const row of m.models) {
        addRow(perModel.get(row.model) ?? setNew(perModel, row.model), row);
        addRow(perMiner.get(m.hotkey) ?? setNew(perMiner, m.hotkey), row);
      }
    }
    const live = new Map<string, { miners: Set<string>; contexts: number[] }>();
    for (const s of sessions) {
      if (s.state !== "active") continue;
      for (const m of s.models) {
        const e = live.get(m.id) ?? { miners: new Set<string>(), contexts: [] };
        e.miners.add(s.hotkey);
        if (m.contextLength > 0) e.contexts.push(m.contextLength);
        live.set(m.id, e);
      }
    }
    const ids = [...new Set([...catalogue.entries.map((e) => e.id), ...live.keys()])].sort();
    const models: NetworkModel[] = [];
    for (const id of ids) {
      const entry = catalogue.resolve(id);
      if (entry === undefined) continue;
      const l = live.get(id);
      models.push({
        id,
        context_length: contextOf(entry.contextLength, l?.contexts ?? []),
        price_per_million: prices(entry.pricePromptPerM, entry.priceCompletionPerM),
        miners: l?.miners.size ?? 0,
        traffic_24h: figures(perModel.get(id) ?? emptySum()),
        ttft_p50_ms: median(routing.filter((r) => r.model === id).map((r) => r.ttftP50Ms)),
      });
    }
    const miners: NetworkMiner[] = [];
    const counts: Record<MinerStateName, number> = { active: 0, ghost: 0, draining: 0, banned: 0 };
    for (const [hotkey, tunnels] of byHotkey(sessions)) {
      const state = hotkeyState(tunnels);
      counts[state]++;
      miners.push({
        hotkey,
        state,
        tunnels: tunnels.length,
        models: [...new Set(tunnels.flatMap((t) => t.models.map((m) => m.id)))].sort(),
        connected_since_ms: Math.min(...tunnels.map((t) => t.connectedSinceMs)),
        traffic_24h: figures(perMiner.get(hotkey) ?? emptySum()),
      });
    }
    return {
      generated_at_ms: report.reportTimeMs,
      window_ms: CONSOLE_WINDOW_MS,
      models,
      miner_counts: counts,
      miners,
    };
  }

  /** `GET /api/v1/models/<id>/stats`; `model_not_found` for a model nobody can ask for. */
  async modelStats(name: string): Promise<ModelStatsBody> {
    const catalogue = this.#s.catalogue();
    const entry = catalogue.resolve(name);
    const id = entry?.id ?? name;
    const sessions = this.#s.sessions();
    const offered = sessions.filter((s) => s.models.some((m) => m.id === id));
    const report = await this.#usage();
    const rows = report.miners.flatMap((m) =>
      m.models.filter((r) => r.model === id).map((r) => ({ hotkey: m.hotkey, row: r })),
    );
    const known = catalogue.entries.some((e) => e.id === id) || offered.length > 0 || rows.length > 0;
    if (entry === undefined || !known) {
      throw new TensorClawError("model_not_found", `The model ${JSON.stringify(name)} does not exist.`, {
        param: "model",
      });
    }
    const routing = this.#s.routing().filter((r) => r.model === id);
    const groups = byHotkey(offered);
    const hotkeys = [...new Set([...groups.keys(), ...rows.map((r) => r.hotkey)])].sort();
    const total = emptySum();
    for (const r of rows) addRow(total, r.row);
    return {
      id,
      context_length: contextOf(
        entry.contextLength,
        offered
          .flatMap((s) => s.models.filter((m) => m.id === id && m.contextLength > 0))
          .map((m) => m.contextLength),
      ),
      price_per_million: prices(entry.pricePromptPerM, entry.priceCompletionPerM),
      traffic_24h: figures(total),
      ttft_p50_ms: median(routing.map((r) => r.ttftP50Ms)),
      miners: hotkeys.map((hotkey) => {
        const sum = emptySum();
        for (const r of rows) if (r.hotkey === hotkey) addRow(sum, r.row);
        const tunnels = groups.get(hotkey);
        return {
          hotkey,
          state: tunnels === undefined ? "offline" : hotkeyState(tunnels),
          traffic_24h: figures(sum),
          ttft_p50_ms: median(routing.filter((r) => r.hotkey === hotkey).map((r) => r.ttftP50Ms)),
        };
      }),
      series: await this.#hourly(`model:${id}`, undefined, (r) => r.models.filter((x) => x.model === id)),
    };
  }

  /** `GET /api/v1/miners/<hotkey>`; `not_found` for a hotkey this router has not seen in the window. */
  async miner(hotkey: string): Promise<MinerBody> {
    const tunnels = this.#s.sessions().filter((s) => s.hotkey === hotkey);
    const report = await this.#usage();
    const usage = report.miners.find((m) => m.hotkey === hotkey);
    if (tunnels.length === 0 && usage === undefined) {
      throw new TensorClawError(
        "not_found",
        `No miner ${JSON.stringify(hotkey)} on this router in the last 24 h.`,
      );
    }
    const routing = this.#s.routing().filter((r) => r.hotkey === hotkey);
    const failed = new Set(
      this.#s
        .auditFailed()
        .filter((p) => p.hotkey === hotkey)
        .map((p) => p.model),
    );
    const ids = new Set([
      ...tunnels.flatMap((t) => t.models.map((m) => m.id)),
      ...(usage?.models.map((m) => m.model) ?? []),
      ...failed,
    ]);
    const total = emptySum();
    for (const r of usage?.models ?? []) addRow(total, r);
    return {
      hotkey,
      state: tunnels.length === 0 ? "offline" : hotkeyState(tunnels),
      tunnels: tunnels.map((t) => ({
        transport: t.transport,
        state: t.state,
        connected_since_ms: t.connectedSinceMs,
        software_version: t.softwareVersion,
        models: t.models.map((m) => ({ id: m.id, max_concurrency: m.maxConcurrency })),
      })),
      models: [...ids].sort().map((model) => {
        const sum = emptySum();
        for (const r of usage?.models ?? []) if (r.model === model) addRow(sum, r);
        const route = routing.find((r) => r.model === model);
        return {
          model,
          traffic_24h: figures(sum),
          ttft_p50_ms: route?.ttftP50Ms === undefined ? null : Math.round(route.ttftP50Ms),
          breaker: route?.breaker ?? null,
          audit_failed: failed.has(model),
        };
      }),
      traffic_24h: figures(total),
      series: await this.#hourly(`miner:${hotkey}`, [hotkey], (r) => r.models),
    };
  }

  /** The 24 h report, read at most every REPORT_TTL_MS. */
  #usage(): Promise<UsageReport> {
    const now = this.#s.clock();
    if (this.#report === undefined || now - this.#report.atMs >= REPORT_TTL_MS) {
      const value = this.#s.ledger.usage({ windowMs: this.#windowMs(), nowMs: now });
      // A failed read is not kept: the next poll tries again.
      value.catch(() => {
        if (this.#report?.value === value) this.#report = undefined;
      });
      this.#report = { atMs: now, value };
    }
    return this.#report.value;
  }

  /** The window, shortened to the ledger's retention when that is shorter. */
  #windowMs(): number {
    return Math.min(CONSOLE_WINDOW_MS, this.#s.ledger.options.retentionMs);
  }

  /** Tokens and requests per hour of one scope (cumulative windows of 1..24 h, differenced). */
  #hourly(
    scope: string,
    hotkeys: string[] | undefined,
    rows: (
      m: UsageReport["miners"][number],
    ) => readonly { promptTokens: number; completionTokens: number; requests: number }[],
  ): Promise<SeriesPoint[]> {
    const now = this.#s.clock();
    const hit = this.#series.get(scope);
    if (hit !== undefined && now - hit.atMs < SERIES_TTL_MS) return hit.value;
    const hours = Math.max(1, Math.floor(this.#windowMs() / HOUR_MS));
    const value = (async () => {
      const reports = await Promise.all(
        Array.from({ length: hours }, (_, k) =>
          this.#s.ledger.usage({ windowMs: (k + 1) * HOUR_MS, nowMs: now, ...(hotkeys ? { hotkeys } : {}) }),
        ),
      );
      const cumulative: CumulativeTotal[] = reports.map((r) => {
        let tokens = 0;
        let requests = 0;
        for (const m of r.miners) {
          for (const x of rows(m)) {
            tokens += x.promptTokens + x.completionTokens;
            requests += x.requests;
          }
        }
        return { tokens, requests };
      });
      return hourlySeries(cumulative, reports[0]?.windowEndMs ?? now, HOUR_MS);
    })();
    value.catch(() => this.#series.delete(scope));
    // Scopes are bounded by live hotkeys and models, but forget old ones all the same.
    if (this.#series.size > 1000) this.#series.clear();
    this.#series.set(scope, { atMs: now, value });
    return value;
  }
}

function setNew(map: Map<string, TrafficSum>, key: string): TrafficSum {
  const s = emptySum();
  map.set(key, s);
  return s;
}

/** The catalogue's context length, else the smallest one advertised, else null (as /v1/models). */
function contextOf(catalogue: number, advertised: readonly number[]): number | null {
  if (catalogue > 0) return catalogue;
  return advertised.length > 0 ? Math.min(...advertised) : null;
}

function prices(prompt: number, completion: number): PricePerMillion {
  return { prompt, completion };
}
