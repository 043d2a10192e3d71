import type { Logger } from "../../common/logger.js";
import type { TokenCount } from "../../common/tokens/encodings.js";
import { countPromptTokens } from "../../common/tokens/prompt.js";
import type { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { ApiMetrics } from "../metrics.js";
import type { RoutingOutcome } from "../routing/outcome-window.js";
import type { InferenceCall } from "../tunnel/types.js";
import {
  type ClampedUsage,
  clampUsage,
  FINISH_TOKEN_ALLOWANCE,
  type PromptSize,
  type ReportedUsage,
} from "../usage/clamp.js";
import type { EventBilling, UsageEvent, UsageOutcome, UsageSink } from "../usage/event.js";
import { creditFromCount } from "../usage/token-credit.js";
import { chargeMicros, type RequestBilling } from "./chat-billing.js";
import { choicesOf } from "./chat-ceiling.js";

/** What the chat endpoint knows about a request when it ends. */
export interface FinishedRequest {
  readonly requestId: string;
  readonly model: string;
  readonly startedAtMs: number;
  readonly prompt: PromptSize;
  /**
   * The request's completion ceiling per choice (chat-ceiling.ts): no choice
   * is credited more than this plus its end-of-turn token.
   */
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
  /** `count` for the prompt, remembering long messages (TokenCountMemo); default `count`. */
  readonly promptCount?: TokenCount | undefined;
  /** The prompt's tokens under `count`, when already counted (for the hold): not counted twice. */
  readonly countedPrompt?: number | undefined;
  /** How the request's API key is billed; undefined without a key (`--no-auth`). */
  readonly billing?: RequestBilling | undefined;
  /** First token after the start, ms; null when none came. */
  readonly ttftMs?: number | null;
  /** OpenAI finish reason of the answer, or null. */
  readonly finishReason?: string | null;
  /** The answer was streamed (SSE). */
  readonly streamed?: boolean;
}

/** What the hand-off did. */
export interface HandOff {
  /** The credited usage (for the rate limiter's reconciliation). */
  readonly credited: ClampedUsage;
  /** Whether the request's final usage event was recorded (else its billing hold must be released). */
  readonly recorded: boolean;
  /** What that event charges the request's key (0 without billing or an event). */
  readonly chargedMicros: number;
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
 * sent and the text it relayed (router/usage/token-credit.ts), each choice
 * counted on its own and capped at the completion ceiling (plus its
 * end-of-turn token). Nothing for a request that failed, or ended without
 * a word reaching the router; what was relayed before a cancel. Until the
 * model's tokenizer is loaded, the older bound by relayed bytes applies.
 */
export function creditedUsage(r: FinishedRequest): ClampedUsage {
  const call = r.call;
  if (call === undefined || r.outcome === "failed") return NONE;
  const bytes = call.relayedBytes();
  if (bytes === 0 && r.outcome !== "completed") return NONE;
  const answers = choicesOf(r.chat);
  // Nobody asked for more than the ceiling: what a miner sends beyond it in any choice earns
  // nothing and costs the user nothing (the same bound as the hold's worst case).
  const perChoice = r.maxTokens > 0 ? r.maxTokens + FINISH_TOKEN_ALLOWANCE : Number.POSITIVE_INFINITY;
  const choices = call.relayedChoices();
  const count = r.count;
  if (count === undefined) {
    let most = 0;
    for (const c of choices) most += Math.min(c.bytes + FINISH_TOKEN_ALLOWANCE, perChoice);
    // Choices that sent nothing may still end with an end-of-turn token.
    most += Math.max(0, answers - choices.length) * FINISH_TOKEN_ALLOWANCE;
    return clampUsage(r.prompt, { bytes, maxTokens: most, answers }, r.reported);
  }
  let counted = 0;
  let most = Math.max(0, answers - choices.length) * FINISH_TOKEN_ALLOWANCE;
  for (const c of choices) {
    const n = count(c.content) + count(c.reasoning) + count(c.tools);
    counted += n;
    most += Math.min(n + FINISH_TOKEN_ALLOWANCE, perChoice);
  }
  const promptTokens = r.countedPrompt ?? countPromptTokens(r.chat, r.promptCount ?? count);
  const u = creditFromCount(
    { promptTokens, completionTokens: counted, messages: r.chat.messages.length },
    r.reported,
    answers,
  );
  if (u.completionTokens <= most) return u;
  return { promptTokens: u.promptTokens, completionTokens: most, clamped: true };
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
 * The `billing` of a request's final usage event: what its key is charged
 * for the credited tokens, and what its generation record says.
 */
export function eventBilling(
  b: RequestBilling,
  r: Pick<FinishedRequest, "ttftMs" | "finishReason" | "streamed">,
  promptTokens: number,
  completionTokens: number,
): EventBilling {
  return {
    keyId: b.keyId,
    costMicros: chargeMicros(b, promptTokens, completionTokens),
    holdMicros: b.holdMicros,
    ...(b.ticket === undefined ? {} : { holdId: b.ticket.holdId }),
    ttftMs: r.ttftMs ?? null,
    finishReason: r.finishReason ?? null,
    streamed: r.streamed ?? false,
    ...(b.app === undefined ? {} : { app: b.app }),
  };
}

/**
 * Records an attempt that failed on one miner — one retried elsewhere, or
 * the request's last — with no tokens: it earns nothing and counts against
 * the miner's success rate (README, Scoring). The request's last attempt
 * passes `final` (its key's billing: nothing charged, the hold settled, a
 * generation record written); earlier ones pass none.
 */
export function recordFailedAttempt(
  d: UsageHandOffDeps,
  r: Pick<FinishedRequest, "requestId" | "model" | "startedAtMs">,
  hotkey: string,
  outcome: UsageOutcome,
  final?: Pick<FinishedRequest, "billing" | "ttftMs" | "finishReason" | "streamed">,
): void {
  const b = final?.billing;
  d.usage.record({
    requestId: r.requestId,
    minerHotkey: hotkey,
    model: r.model,
    promptTokens: 0,
    completionTokens: 0,
    outcome,
    startedAtMs: r.startedAtMs,
    finishedAtMs: d.clock(),
    ...(b === undefined || final === undefined
      ? {}
      : { paid: b.paid, billing: eventBilling(b, final, 0, 0) }),
  });
}

const NOTHING: HandOff = Object.freeze({ credited: NONE, recorded: false, chargedMicros: 0 });

/**
 * Emits the usage event of the request's last attempt — when a miner
 * completed it, or it was cancelled after output — with credited counts,
 * and counts its tokens in the metrics. A request that failed (before or
 * after output, or cut: undelivered work earns nothing) records its failure
 * with no tokens; one that never reached a miner records nothing. The event
 * recorded is the request's final one: with an API key it carries `paid`
 * and `billing`. `credited` is the figure already computed for the
 * response, if any.
 */
export function handOffUsage(
  d: UsageHandOffDeps,
  r: FinishedRequest,
  credited: ClampedUsage | undefined,
): HandOff {
  const call = r.call;
  const hotkey = r.minerHotkey;
  if (call === undefined || hotkey === undefined || r.outcome === undefined) return NOTHING;
  if (r.outcome === "failed") {
    // Nothing is credited; the ledger still counts the failure against the miner's success rate.
    const outcome = r.lastAttempt === undefined ? "failed" : ledgerOutcome(r.lastAttempt);
    if (outcome === undefined) return NOTHING;
    recordFailedAttempt(d, r, hotkey, outcome, r);
    return { credited: NONE, recorded: true, chargedMicros: 0 };
  }
  const bytes = call.relayedBytes();
  if (bytes === 0 && r.outcome !== "completed") return NOTHING;
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
  const b = r.billing;
  const billing = b === undefined ? undefined : eventBilling(b, r, u.promptTokens, u.completionTokens);
  d.usage.record({
    requestId: r.requestId,
    minerHotkey: hotkey,
    model: r.model,
    promptTokens: u.promptTokens,
    completionTokens: u.completionTokens,
    outcome: r.outcome,
    startedAtMs: r.startedAtMs,
    finishedAtMs: d.clock(),
    ...(b === undefined || billing === undefined ? {} : { paid: b.paid, billing }),
  });
  return { credited: u, recorded: true, chargedMicros: billing?.costMicros ?? 0 };
}

/**
 * Runs `handOff` with a usage sink that records durably, stores what it did
 * in `st.handed` at once (so it is never done twice), and returns a promise that resolves
 * once every event it recorded is in the ledger or the spool, or after
 * `waitMs`. The API awaits that before ending a completed answer: a router
 * SIGKILLed after a user received an answer has counted it. The bound keeps
 * a slow or failing Redis from holding answers until the ledger call times
 * out (the recorder then spools, and later answers wait only for the fsync).
 */
export function handOffDurably(
  d: UsageHandOffDeps,
  waitMs: number,
  st: { handed?: HandOff },
  handOff: (d: UsageHandOffDeps) => HandOff,
): Promise<void> {
  const sink = d.usage;
  if (sink.recordDurably === undefined) {
    st.handed = handOff(d);
    return Promise.resolve();
  }
  const pending: Promise<void>[] = [];
  const durably: UsageSink = {
    record: (e: UsageEvent) => {
      pending.push((sink.recordDurably as (e: UsageEvent) => Promise<void>).call(sink, e));
    },
  };
  st.handed = handOff({ usage: durably, metrics: d.metrics, logger: d.logger, clock: d.clock });
  if (pending.length === 0) return Promise.resolve();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, waitMs);
  });
  return Promise.race([Promise.all(pending), bound]).then(() => clearTimeout(timer));
}
