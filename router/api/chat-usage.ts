import type { Logger } from "../../common/logger.js";
import type { TokenCount } from "../../common/tokens/encodings.js";
import type { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { ApiMetrics } from "../metrics.js";
import type { RoutingOutcome } from "../routing/outcome-window.js";
import type { InferenceCall } from "../tunnel/types.js";
import { type ClampedUsage, clampUsage, type PromptSize, type ReportedUsage } from "../usage/clamp.js";
import type { UsageOutcome, UsageSink } from "../usage/event.js";
import { countRequest, creditFromCount } from "../usage/token-credit.js";

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
  /** How the last attempt ended, as the routing book saw it (refines a failure for the ledger). */
  readonly lastAttempt: RoutingOutcome | undefined;
  /** The chat request the miner was sent (its prompt is counted from it). */
  readonly chat: ChatRequest;
  /** The model's catalogue tokenizer, once loaded (undefined: bound by bytes instead). */
  readonly count: TokenCount | undefined;
}

/** Where the hand-off goes. */
export interface UsageHandOffDeps {
  readonly usage: UsageSink;
  readonly metrics: ApiMetrics;
  readonly logger: Logger;
  readonly clock: () => number;
}

const NONE: ClampedUsage = Object.freeze({ promptTokens: 0, completionTokens: 0, clamped: false });

/**
 * The counts the user is billed and the miner credited (README, Scoring):
 * the miner's report bounded by the router's own count of the prompt it
 * sent and the text it relayed (router/usage/token-credit.ts). Nothing for
 * a request that failed, or ended without a word reaching the router; what
 * was relayed before a cancel. Until the model's tokenizer is loaded, the
 * older bound by relayed bytes applies.
 */
export function creditedUsage(r: FinishedRequest): ClampedUsage {
  const call = r.call;
  if (call === undefined || r.outcome === "failed") return NONE;
  const bytes = call.relayedBytes();
  if (bytes === 0 && r.outcome !== "completed") return NONE;
  if (r.count === undefined) return clampUsage(r.prompt, { bytes, maxTokens: r.maxTokens }, r.reported);
  return creditFromCount(countRequest(r.chat, call.relayedText(), r.count), r.reported);
}

/**
 * The ledger's outcome of an attempt the routing book saw end, or undefined
 * for one the ledger does not count against the miner (the user's cancel,
 * a request the backend refused as invalid).
 */
export function ledgerOutcome(o: RoutingOutcome): UsageOutcome | undefined {
  switch (o) {
    case "served":
      return "completed";
    case "failed_before_output":
      return "failed_early";
    case "failed_after_output":
      return "failed";
    case "deadline":
      return "cut";
    case "cancelled":
    case "refused":
      return undefined;
  }
}

/**
 * Records an attempt that failed on one miner — one retried elsewhere, or
 * the request's last — with no tokens: it earns nothing and counts against
 * the miner's success rate (README, Scoring).
 */
export function recordFailedAttempt(
  d: UsageHandOffDeps,
  r: Pick<FinishedRequest, "requestId" | "model" | "startedAtMs">,
  hotkey: string,
  outcome: UsageOutcome,
): void {
  d.usage.record({
    requestId: r.requestId,
    minerHotkey: hotkey,
    model: r.model,
    promptTokens: 0,
    completionTokens: 0,
    outcome,
    startedAtMs: r.startedAtMs,
    finishedAtMs: d.clock(),
  });
}

/**
 * Emits the usage event of the request's last attempt — when a miner
 * completed it, or it was cancelled after output — with credited counts,
 * and counts its tokens in the metrics. A request that failed (before or
 * after output, or cut: undelivered work earns nothing) records its failure
 * with no tokens; one that never reached a miner records nothing. `credited`
 * is the figure already computed for the response, if any. Returns the
 * credited usage (for the rate limiter's reconciliation).
 */
export function handOffUsage(
  d: UsageHandOffDeps,
  r: FinishedRequest,
  credited: ClampedUsage | undefined,
): ClampedUsage {
  const call = r.call;
  const hotkey = r.minerHotkey;
  if (call === undefined || hotkey === undefined || r.outcome === undefined) return NONE;
  if (r.outcome === "failed") {
    // Nothing is credited; the ledger still counts the failure against the miner's success rate.
    const outcome = r.lastAttempt === undefined ? "failed" : ledgerOutcome(r.lastAttempt);
    if (outcome !== undefined) recordFailedAttempt(d, r, hotkey, outcome);
    return NONE;
  }
  const bytes = call.relayedBytes();
  if (bytes === 0 && r.outcome !== "completed") return NONE;
  const u = credited ?? creditedUsage(r);
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
