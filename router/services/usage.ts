import { TensorClawError } from "../../common/errors.js";
import { unaryHandler } from "../../common/grpc-unary.js";
import { isValidHotkey } from "../../common/identity.js";
import type { Logger } from "../../common/logger.js";
import { silentLogger } from "../../common/logger.js";
import {
  type GetUsageRequest,
  type GetUsageResponse,
  type UsageReportServiceServer,
  UsageReportServiceService,
} from "../../gen/tensorclaw/v1/usage.js";
import type { UsageLedger, UsageReport } from "../ledger/ledger.js";

/**
 * Window used when a request asks for 0 seconds (usage.proto), unless the
 * ledger keeps less: then the default is the whole retention.
 */
export const DEFAULT_WINDOW_SECONDS = 86_400;
/** Most hotkeys one request may filter on. */
export const MAX_FILTER_HOTKEYS = 4096;

/** What the UsageReport service reads. */
export interface UsageServiceDeps {
  readonly ledger: UsageLedger;
  /**
   * Business points from every token, paid or free (the router's
   * `--count-free-traffic`, a dev setting); reported as
   * `free_traffic_counted`. Default: paid tokens only.
   */
  readonly countFreeTraffic?: boolean;
  readonly clock?: () => number;
  readonly logger?: Logger;
}

/** The proto response for a ledger report (64-bit counters as bigint). */
export function toGetUsageResponse(r: UsageReport): GetUsageResponse {
  return {
    reportTimeMs: BigInt(r.reportTimeMs),
    windowStartMs: BigInt(r.windowStartMs),
    windowEndMs: BigInt(r.windowEndMs),
    bucketMs: r.bucketMs,
    freeTrafficCounted: r.freeTrafficCounted,
    miners: r.miners.map((m) => ({
      hotkey: m.hotkey,
      promptTokens: BigInt(m.promptTokens),
      completionTokens: BigInt(m.completionTokens),
      paidPromptTokens: BigInt(m.paidPromptTokens),
      paidCompletionTokens: BigInt(m.paidCompletionTokens),
      requests: BigInt(m.requests),
      businessPoints: m.businessPoints,
      models: m.models.map((x) => ({
        model: x.model,
        promptTokens: BigInt(x.promptTokens),
        completionTokens: BigInt(x.completionTokens),
        paidPromptTokens: BigInt(x.paidPromptTokens),
        paidCompletionTokens: BigInt(x.paidCompletionTokens),
        requests: BigInt(x.requests),
        tierMultiplier: x.tierMultiplier,
        businessPoints: x.businessPoints,
        served: BigInt(x.outcomes.served),
        failedBeforeOutput: BigInt(x.outcomes.failedBeforeOutput),
        failedAfterOutput: BigInt(x.outcomes.failedAfterOutput),
        deadlineCut: BigInt(x.outcomes.deadlineCut),
      })),
    })),
  };
}

/**
 * The window a request for 0 seconds gets: 24 h, or the ledger's whole
 * retention when that is shorter (a router run with `--retention-s` below a
 * day still answers a default call instead of refusing it).
 */
export function defaultWindowMs(retentionMs: number): number {
  return Math.min(DEFAULT_WINDOW_SECONDS * 1000, retentionMs);
}

/**
 * Answers one GetUsage request. INVALID_ARGUMENT for a window beyond the
 * ledger's retention or a malformed hotkey filter; UNAVAILABLE when the
 * ledger cannot be read.
 */
export async function getUsage(deps: UsageServiceDeps, req: GetUsageRequest): Promise<GetUsageResponse> {
  const windowMs =
    req.windowSeconds === 0 ? defaultWindowMs(deps.ledger.options.retentionMs) : req.windowSeconds * 1000;
  if (req.hotkeys.length > MAX_FILTER_HOTKEYS) {
    throw new TensorClawError("invalid_request", `at most ${MAX_FILTER_HOTKEYS} hotkeys per request`, {
      param: "hotkeys",
    });
  }
  for (const hk of req.hotkeys) {
    if (!isValidHotkey(hk)) {
      throw new TensorClawError(
        "invalid_request",
        `hotkeys: ${JSON.stringify(hk.slice(0, 64))} is not SS58`,
        {
          param: "hotkeys",
        },
      );
    }
  }
  const nowMs = (deps.clock ?? Date.now)();
  let report: UsageReport;
  try {
    report = await deps.ledger.usage({
      nowMs,
      windowMs,
      hotkeys: req.hotkeys,
      countFreeTraffic: deps.countFreeTraffic === true,
    });
  } catch (err) {
    if (err instanceof TensorClawError) throw err;
    throw new TensorClawError("unavailable", "the usage ledger cannot be read right now", { cause: err });
  }
  return toGetUsageResponse(report);
}

/** The UsageReportService implementation (wrap it with ValidatorAuth before registering). */
export function usageService(deps: UsageServiceDeps): UsageReportServiceServer {
  const log = deps.logger ?? silentLogger();
  return {
    getUsage: unaryHandler<GetUsageRequest, GetUsageResponse>(
      UsageReportServiceService.getUsage.path,
      log,
      (call) => getUsage(deps, call.request),
    ),
  };
}
