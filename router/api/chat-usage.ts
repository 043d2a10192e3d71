import type { Logger } from "../../common/logger.js";
import type { ApiMetrics } from "../metrics.js";
import type { InferenceCall } from "../tunnel/types.js";
import { type ClampedUsage, clampUsage, type PromptSize, type ReportedUsage } from "../usage/clamp.js";
import type { UsageOutcome, UsageSink } from "../usage/event.js";

/** What the chat endpoint knows about a request when it ends. */
export interface FinishedRequest {
  readonly requestId: string;
  readonly model: string;
  readonly startedAtMs: number;
  readonly prompt: PromptSize;
  /** The `max_tokens` the miner was given. */
  readonly maxTokens: number;
  /** The call whose output reached the user (the last attempt), if any miner was dispatched. */
  readonly call: InferenceCall | undefined;
  readonly minerHotkey: string | undefined;
  /** The miner's own counts, when its terminal Usage frame arrived. */
  readonly reported: ReportedUsage | undefined;
  /** How it ended; undefined when it never got as far as a miner. */
  readonly outcome: UsageOutcome | undefined;
}

/** Where the hand-off goes. */
export interface UsageHandOffDeps {
  readonly usage: UsageSink;
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
}

const NONE: ClampedUsage = Object.freeze({ promptTokens: 0, completionTokens: 0, clamped: false });

/** The counts the user is billed and the miner credited: the report bounded by what was relayed. */
export function creditedUsage(r: FinishedRequest): ClampedUsage {
  const bytes = r.call?.relayedBytes() ?? 0;
  return clampUsage(r.prompt, { bytes, maxTokens: r.maxTokens }, r.reported);
}

/**
 * Emits the request's one usage event — when a miner worked on it and it
 * completed, failed after output, or was cancelled — with clamped counts,
 * and counts its tokens in the metrics. A request that failed before any
 * output, or never reached a miner, records nothing. Returns the credited
 * usage (for the rate limiter's reconciliation).
 */
export function handOffUsage(d: UsageHandOffDeps, r: FinishedRequest): ClampedUsage {
  const call = r.call;
  const hotkey = r.minerHotkey;
  if (call === undefined || hotkey === undefined || r.outcome === undefined) return NONE;
  const bytes = call.relayedBytes();
  if (r.outcome === "failed" && bytes === 0) return NONE;
  const u = creditedUsage(r);
  if (u.clamped) {
    d.logger.warn(
      { requestId: r.requestId, hotkey, reported: r.reported, credited: u },
      "miner usage clamped",
    );
  }
  d.metrics.tokens.inc({ model: r.model, kind: "prompt" }, u.promptTokens);
  d.metrics.tokens.inc({ model: r.model, kind: "completion" }, u.completionTokens);
  d.metrics.relayedBytes.inc({ model: r.model }, bytes);
  d.usage.record({
    requestId: r.requestId,
    minerHotkey: hotkey,
    model: r.model,
    promptTokens: u.promptTokens,
    completionTokens: u.completionTokens,
    outcome: r.outcome,
    startedAtMs: r.startedAtMs,
    finishedAtMs: d.clock(),
  });
  return u;
}
