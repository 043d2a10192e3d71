import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import type { SessionState, SessionView } from "./tunnel/types.js";

/** Live values the metrics read when scraped, instead of being pushed. */
export interface MetricsSources {
  /** Current sessions (for miners by state). */
  readonly sessions: () => readonly SessionView[];
  /**
   * Age in seconds of the oldest usage event not yet written to the ledger
   * (queued, being written or in the spool; while the ledger is unreachable,
   * at least the time since it became so); 0 when caught up, undefined if unknown.
   */
  readonly ledgerLagSeconds?: () => number | undefined;
  /** Usage events waiting in the durable spool; undefined if unknown. */
  readonly spoolDepth?: () => number | undefined;
}

const STATES: readonly SessionState[] = ["active", "ghost", "banned", "draining"];

/**
 * The router's Business API metrics, registered on the Registry passed in
 * (never prom-client's global default registry, so several routers can live
 * in one test process).
 */
export class ApiMetrics {
  /** Finished HTTP requests by model and status code. */
  readonly requests: Counter<"model" | "status">;
  /** Time from request received to first token relayed, in seconds. */
  readonly ttft: Histogram<"model">;
  /** Tokens credited, by model and kind (prompt/completion). */
  readonly tokens: Counter<"model" | "kind">;
  /** Bytes of chunk payload relayed to users. */
  readonly relayedBytes: Counter<"model">;
  /** Inference requests (chat, completions, embeddings) being served. */
  readonly inFlight: Gauge;
  /**
   * Inference requests admitted and waiting for a miner: before their first
   * dispatch, between failover attempts, and in the capacity queue while
   * every miner of their model is busy (`queueDepth` counts those alone,
   * per model). Near zero unless miners are saturated.
   */
  readonly waiting: Gauge;
  /** Requests in the capacity queue (every miner of the model busy), per model. */
  readonly queueDepth: Gauge<"model">;
  /** Time spent in the capacity queue, by model and how the wait ended (served, timeout, cancelled). */
  readonly queueWait: Histogram<"model" | "outcome">;
  /** Requests refused by the capacity queue (503), by model and reason (full, timeout). */
  readonly queueRejected: Counter<"model" | "reason">;
  /** Inference requests being served, per model (catalogue or offered ids only). */
  readonly modelInFlight: Gauge<"model">;
  /** Attempts moved to another miner before the first byte. */
  readonly failovers: Counter<"model">;
  /** Whole chat requests, received to last byte, by model and status. */
  readonly duration: Histogram<"model" | "status">;
  /** Attempts per miner hotkey by how they ended (the routing book's outcomes). */
  readonly minerAttempts: Counter<"hotkey" | "outcome">;
  /** Time to first token per miner hotkey. */
  readonly minerTtft: Histogram<"hotkey">;

  constructor(registry: Registry, sources: MetricsSources) {
    const registers = [registry];
    this.requests = new Counter({
      name: "tensorclaw_api_requests_total",
      help: "Finished Business API requests by model and HTTP status.",
      labelNames: ["model", "status"],
      registers,
    });
    this.ttft = new Histogram({
      name: "tensorclaw_api_time_to_first_token_seconds",
      help: "Time from receiving a chat request to relaying its first token.",
      labelNames: ["model"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
    this.tokens = new Counter({
      name: "tensorclaw_api_tokens_total",
      help: "Tokens credited (after the usage clamp), by model and kind.",
      labelNames: ["model", "kind"],
      registers,
    });
    this.relayedBytes = new Counter({
      name: "tensorclaw_api_relayed_bytes_total",
      help: "UTF-8 bytes of answer payload relayed to users.",
      labelNames: ["model"],
      registers,
    });
    this.inFlight = new Gauge({
      name: "tensorclaw_api_in_flight_requests",
      help: "Inference requests (chat, completions, embeddings) being served.",
      registers,
    });
    this.waiting = new Gauge({
      name: "tensorclaw_api_requests_waiting",
      help: "Inference requests admitted and waiting for a miner (before dispatch, between failover attempts, or queued while every miner of the model is busy).",
      registers,
    });
    this.queueDepth = new Gauge({
      name: "tensorclaw_api_queue_depth",
      help: "Requests waiting in the capacity queue because every miner of their model is busy, per model.",
      labelNames: ["model"],
      registers,
    });
    this.queueWait = new Histogram({
      name: "tensorclaw_api_queue_wait_seconds",
      help: "Time requests spent in the capacity queue, by model and outcome (served, timeout, cancelled).",
      labelNames: ["model", "outcome"],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.queueRejected = new Counter({
      name: "tensorclaw_api_queue_rejected_total",
      help: "Requests answered 503 by the capacity queue, by model and reason (full: --max-queue reached; timeout: no slot within --queue-timeout-ms).",
      labelNames: ["model", "reason"],
      registers,
    });
    this.modelInFlight = new Gauge({
      name: "tensorclaw_api_model_in_flight_requests",
      help: "Inference requests being served, per model.",
      labelNames: ["model"],
      registers,
    });
    this.failovers = new Counter({
      name: "tensorclaw_api_failovers_total",
      help: "Inference requests moved to another miner before any output reached the user.",
      labelNames: ["model"],
      registers,
    });
    this.duration = new Histogram({
      name: "tensorclaw_api_request_duration_seconds",
      help: "Chat requests from receipt to their last byte, by model and HTTP status.",
      labelNames: ["model", "status"],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    });
    // Per hotkey: as many series as miners on the subnet (at most its 256 uids).
    this.minerAttempts = new Counter({
      name: "tensorclaw_api_miner_attempts_total",
      help: "Chat attempts per miner hotkey by outcome (served, failed_before_output, failed_after_output, deadline, cancelled, refused).",
      labelNames: ["hotkey", "outcome"],
      registers,
    });
    this.minerTtft = new Histogram({
      name: "tensorclaw_api_miner_time_to_first_token_seconds",
      help: "Time from dispatch to a miner to its first token, per miner hotkey.",
      labelNames: ["hotkey"],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers,
    });
    new Gauge({
      name: "tensorclaw_miners",
      help: "Connected miner sessions by state.",
      labelNames: ["state"],
      registers,
      collect() {
        const counts = new Map<string, number>(STATES.map((s) => [s, 0]));
        for (const s of sources.sessions()) counts.set(s.state, (counts.get(s.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    const lag = sources.ledgerLagSeconds;
    new Gauge({
      name: "tensorclaw_ledger_lag_seconds",
      help: "Age of the oldest usage event not yet written to the ledger (0 when caught up).",
      registers,
      collect() {
        const v = lag?.();
        if (v !== undefined) this.set(v);
      },
    });
    const depth = sources.spoolDepth;
    new Gauge({
      name: "tensorclaw_usage_spool_depth",
      help: "Usage events held in the durable spool while the ledger is unreachable.",
      registers,
      collect() {
        const v = depth?.();
        if (v !== undefined) this.set(v);
      },
    });
  }
}
