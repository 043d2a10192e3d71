/**
 * The JSON bodies of the console's public endpoints (README, "Web
 * console"). The pages in web/ read exactly these and nothing else, so a
 * script sees what a person sees. Pure types: this file is compiled into
 * both the router and the browser bundle.
 *
 * Every string that came from a miner (model ids, software versions) is
 * data for the page to show as text, never markup.
 */

/** Token counts over the window, with the requests they came from. */
export interface TrafficFigures {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  /** Requests credited (completed or cancelled by the user). */
  readonly requests: number;
  /**
   * served / (served + failed + cut by the deadline) over the window; null
   * with no attempt. User cancels count on neither side.
   */
  readonly success_rate: number | null;
}

/** One hour of traffic: the chart's points, oldest first. */
export interface SeriesPoint {
  /** Start of the hour, Unix ms. */
  readonly start_ms: number;
  readonly tokens: number;
  readonly requests: number;
}

/** Prices of a model, USD per million tokens (the catalogue's unit). */
export interface PricePerMillion {
  readonly prompt: number;
  readonly completion: number;
}

/** A hotkey's state on this router, the best of its tunnels: active > draining > ghost > banned. */
export type MinerStateName = "active" | "ghost" | "draining" | "banned";

/** One model on the Network page. */
export interface NetworkModel {
  readonly id: string;
  readonly context_length: number | null;
  readonly price_per_million: PricePerMillion;
  /** Hotkeys with an active tunnel offering it now. */
  readonly miners: number;
  readonly traffic_24h: TrafficFigures;
  /** Median of the serving hotkeys' recent time-to-first-token medians, ms; null before any. */
  readonly ttft_p50_ms: number | null;
}

/** One hotkey on the Network page. */
export interface NetworkMiner {
  readonly hotkey: string;
  readonly state: MinerStateName;
  readonly tunnels: number;
  readonly models: readonly string[];
  /** Earliest connection of its open tunnels, Unix ms. */
  readonly connected_since_ms: number;
  readonly traffic_24h: TrafficFigures;
}

/** `GET /api/v1/network`. */
export interface NetworkBody {
  readonly generated_at_ms: number;
  readonly window_ms: number;
  readonly models: readonly NetworkModel[];
  readonly miner_counts: Readonly<Record<MinerStateName, number>>;
  readonly miners: readonly NetworkMiner[];
}

/** One hotkey serving a model, on the model's page. */
export interface ModelMiner {
  readonly hotkey: string;
  /** "offline": no tunnel now, but traffic in the window. */
  readonly state: MinerStateName | "offline";
  readonly traffic_24h: TrafficFigures;
  readonly ttft_p50_ms: number | null;
}

/** `GET /api/v1/models/<id>/stats`. */
export interface ModelStatsBody {
  readonly id: string;
  readonly context_length: number | null;
  readonly price_per_million: PricePerMillion;
  readonly traffic_24h: TrafficFigures;
  readonly ttft_p50_ms: number | null;
  readonly miners: readonly ModelMiner[];
  /** Tokens per hour over the window. */
  readonly series: readonly SeriesPoint[];
}

/** One tunnel of a hotkey, on the miner's page. */
export interface MinerTunnel {
  readonly transport: "grpc" | "ws";
  readonly state: MinerStateName;
  readonly connected_since_ms: number;
  /** As the miner reported it: text, not a fact. */
  readonly software_version: string;
  readonly models: readonly { readonly id: string; readonly max_concurrency: number }[];
}

/** One model of a hotkey, on the miner's page. */
export interface MinerModel {
  readonly model: string;
  readonly traffic_24h: TrafficFigures;
  readonly ttft_p50_ms: number | null;
  /** The router's circuit breaker for the pair: closed, open or half_open; null before any request. */
  readonly breaker: string | null;
  /** A validator's audit failed the pair: it gets no user traffic from this router until it passes. */
  readonly audit_failed: boolean;
}

/** `GET /api/v1/miners/<hotkey>`. */
export interface MinerBody {
  readonly hotkey: string;
  readonly state: MinerStateName | "offline";
  readonly tunnels: readonly MinerTunnel[];
  readonly models: readonly MinerModel[];
  readonly traffic_24h: TrafficFigures;
  readonly series: readonly SeriesPoint[];
}

/** One UTC day of a key's spend. */
export interface ActivityDay {
  /** `YYYY-MM-DD`, UTC. */
  readonly date: string;
  /** USD. */
  readonly cost: number;
  readonly requests: number;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
}

/** One model's share of a key's spend over the 30 days. */
export interface ActivityModel {
  readonly model: string;
  readonly cost: number;
  readonly requests: number;
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
}

/** `GET /api/v1/key/activity`. */
export interface ActivityBody {
  readonly data: {
    /** Oldest first, one entry per day (0 on a day without requests). */
    readonly days: readonly ActivityDay[];
    /** Sorted by cost, then model id. */
    readonly models: readonly ActivityModel[];
    /** The key's own TAO deposit address when this router credits deposits, else null. */
    readonly deposit_address: string | null;
  };
}
