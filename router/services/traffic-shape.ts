import type { handleUnaryCall } from "@grpc/grpc-js";
import { TensorClawError } from "../../common/errors.js";
import { unaryHandler } from "../../common/grpc-unary.js";
import type { Logger } from "../../common/logger.js";
import { quantiseRequestShape, type ShapeFields, shapeFieldValues } from "../../common/request-shape.js";
import {
  type FieldValueCount,
  type GetTrafficShapeRequest,
  type GetTrafficShapeResponse,
  ProbeServiceService,
  type RequestShape,
} from "../../gen/tensorclaw/v1/probe.js";

/*
 * What user traffic looks like, for validators to shape their probes after
 * (probe.proto GetTrafficShape): counts of quantised request shapes over a
 * rolling hour, never content. Probes are not recorded — only the Business
 * API's chat endpoint feeds this — so the published mix cannot drift towards
 * the probes' own shape.
 *
 * Memory is bounded: one bucket per minute of the window, each holding at
 * most `maxShapesPerMinute` distinct shapes; a request of a new shape in a
 * full bucket still counts in `requests`, so the total stays exact.
 */

/** Settings of a {@link TrafficShapeRecorder}. */
export interface TrafficShapeOptions {
  /** Minutes in the rolling window (one bucket each). Default 60. */
  readonly windowMinutes?: number;
  /** Distinct shapes kept per minute bucket. Default 4096. */
  readonly maxShapesPerMinute?: number;
  /** Shapes seen fewer times in the window are not reported. Default 5. */
  readonly minCount?: number;
  /** Most shapes in one report. Default 1000. */
  readonly maxShapes?: number;
  /** Unix ms, read only by the gRPC handler (recording and reports take the time as an argument). */
  readonly clock?: () => number;
}

/** Defaults of {@link TrafficShapeOptions}. */
export const TRAFFIC_SHAPE_DEFAULTS = Object.freeze({
  windowMinutes: 60,
  maxShapesPerMinute: 4096,
  minCount: 5,
  maxShapes: 1000,
});

const MINUTE_MS = 60_000;
/** Longest model id a GetTrafficShape call may filter on (the API's own limit). */
const MAX_MODEL_CHARS = 256;

/** One minute of traffic, per model. */
interface Bucket {
  /** Minute number (Unix ms / 60,000) this bucket holds; stale buckets are reset on write. */
  minute: number;
  /** Requests per model, including those whose shape did not fit. */
  readonly requests: Map<string, number>;
  /** Per model: shape key → count. */
  readonly shapes: Map<string, Map<string, number>>;
  /** Distinct shapes held, over all models. */
  distinct: number;
}

/** A shape as a compact, decodable map key (the model is the map it lives in). */
function shapeKey(s: ShapeFields): string {
  return JSON.stringify([
    s.messages,
    s.systemPrompt ? 1 : 0,
    s.stream ? 1 : 0,
    s.user ? 1 : 0,
    s.maxTokens,
    s.temperature ?? null,
    s.topP ?? null,
    s.seed ? 1 : 0,
    s.stop,
    s.tools,
    s.responseFormat,
    s.promptTokensLog2,
    s.logprobs ? 1 : 0,
  ]);
}

function shapeFromKey(model: string, key: string, count: number): RequestShape {
  const [messages, sys, stream, user, maxTokens, temperature, topP, seed, stop, tools, rf, log2, logprobs] =
    JSON.parse(key) as [
      number,
      number,
      number,
      number,
      number,
      number | null,
      number | null,
      number,
      number,
      number,
      string,
      number,
      number,
    ];
  return {
    count: BigInt(count),
    model,
    messages,
    systemPrompt: sys === 1,
    stream: stream === 1,
    user: user === 1,
    maxTokens,
    temperature: temperature ?? undefined,
    topP: topP ?? undefined,
    seed: seed === 1,
    stop,
    tools,
    responseFormat: rf,
    promptTokensLog2: log2,
    logprobs: logprobs === 1,
  };
}

/**
 * Counts the shapes of user chat requests over a rolling window, per
 * canonical model, and reports the common ones. Pure bookkeeping: the time
 * comes in as an argument, nothing is scheduled.
 */
export class TrafficShapeRecorder {
  readonly #windowMinutes: number;
  readonly #maxShapesPerMinute: number;
  readonly #minCount: number;
  readonly #maxShapes: number;
  readonly #clock: () => number;
  readonly #buckets: Bucket[];

  constructor(options: TrafficShapeOptions = {}) {
    const o = { ...TRAFFIC_SHAPE_DEFAULTS, ...options };
    this.#windowMinutes = Math.max(1, Math.floor(o.windowMinutes));
    this.#maxShapesPerMinute = Math.max(0, Math.floor(o.maxShapesPerMinute));
    this.#minCount = Math.max(1, Math.floor(o.minCount));
    this.#maxShapes = Math.max(0, Math.floor(o.maxShapes));
    this.#clock = options.clock ?? Date.now;
    this.#buckets = Array.from({ length: this.#windowMinutes }, () => ({
      minute: Number.NaN,
      requests: new Map(),
      shapes: new Map(),
      distinct: 0,
    }));
  }

  /** Unix ms now, by the injected clock (for the gRPC handler). */
  now(): number {
    return this.#clock();
  }

  /**
   * Records one user request: its raw JSON body (values as the caller sent
   * them), the canonical model it resolved to, and the router's estimate of
   * its prompt tokens.
   */
  record(body: unknown, model: string, promptTokens: number, nowMs: number): void {
    this.recordShape(quantiseRequestShape(body, model, promptTokens), nowMs);
  }

  /** Records one request of an already quantised shape. */
  recordShape(shape: ShapeFields, nowMs: number): void {
    const bucket = this.#bucket(Math.floor(nowMs / MINUTE_MS));
    bucket.requests.set(shape.model, (bucket.requests.get(shape.model) ?? 0) + 1);
    let shapes = bucket.shapes.get(shape.model);
    const key = shapeKey(shape);
    const seen = shapes?.get(key);
    if (seen !== undefined) {
      shapes?.set(key, seen + 1);
      return;
    }
    // A new shape in a full bucket: counted in `requests` only.
    if (bucket.distinct >= this.#maxShapesPerMinute) return;
    if (shapes === undefined) {
      shapes = new Map();
      bucket.shapes.set(shape.model, shapes);
    }
    shapes.set(key, 1);
    bucket.distinct++;
  }

  /**
   * The window's report for `model` ("" for every model): requests counted,
   * and the shapes seen at least `minCount` times, most frequent first
   * (ties in a fixed order), at most `maxShapes`.
   */
  report(model: string, nowMs: number): GetTrafficShapeResponse {
    const nowMinute = Math.floor(nowMs / MINUTE_MS);
    let requests = 0;
    // model → key → count over the window.
    const totals = new Map<string, Map<string, number>>();
    for (const b of this.#buckets) {
      // Only minutes inside the window: older ones are stale, later ones come from a clock that stepped back.
      if (!(b.minute > nowMinute - this.#windowMinutes && b.minute <= nowMinute)) continue;
      for (const [m, n] of b.requests) if (model === "" || m === model) requests += n;
      for (const [m, shapes] of b.shapes) {
        if (model !== "" && m !== model) continue;
        let t = totals.get(m);
        if (t === undefined) {
          t = new Map();
          totals.set(m, t);
        }
        for (const [key, n] of shapes) t.set(key, (t.get(key) ?? 0) + n);
      }
    }
    const listed: { model: string; key: string; count: number }[] = [];
    const rare: { model: string; key: string; count: number }[] = [];
    for (const [m, t] of totals) {
      for (const [key, count] of t) (count >= this.#minCount ? listed : rare).push({ model: m, key, count });
    }
    listed.sort(
      (a, b) =>
        b.count - a.count || (a.model < b.model ? -1 : a.model > b.model ? 1 : a.key < b.key ? -1 : 1),
    );
    // Shapes past the report's cap belong to the tail as well.
    rare.push(...listed.slice(this.#maxShapes));
    return {
      windowSeconds: this.#windowMinutes * 60,
      requests: BigInt(requests),
      shapes: listed.slice(0, this.#maxShapes).map((s) => shapeFromKey(s.model, s.key, s.count)),
      minCount: this.#minCount,
      reportTimeMs: BigInt(Math.floor(nowMs)),
      tail: this.#tail(rare),
    };
  }

  /** The rare shapes, field by field, leaving out values seen fewer than `minCount` times. */
  #tail(rare: readonly { model: string; key: string; count: number }[]): FieldValueCount[] {
    const counts = new Map<string, number>();
    for (const r of rare) {
      for (const [field, value] of shapeFieldValues(shapeFromKey(r.model, r.key, r.count))) {
        const k = JSON.stringify([r.model, field, value]);
        counts.set(k, (counts.get(k) ?? 0) + r.count);
      }
    }
    const out: FieldValueCount[] = [];
    for (const [k, count] of counts) {
      if (count < this.#minCount) continue;
      const [model, field, value] = JSON.parse(k) as [string, string, string];
      out.push({ model, field, value, count: BigInt(count) });
    }
    return out.sort((a, b) =>
      a.model !== b.model
        ? a.model < b.model
          ? -1
          : 1
        : a.field !== b.field
          ? a.field < b.field
            ? -1
            : 1
          : Number(b.count - a.count) || (a.value < b.value ? -1 : 1),
    );
  }

  /** The bucket of `minute`, emptied first when it still holds an older minute. */
  #bucket(minute: number): Bucket {
    const n = this.#windowMinutes;
    const b = this.#buckets[((minute % n) + n) % n] as Bucket;
    if (b.minute !== minute) {
      b.minute = minute;
      b.requests.clear();
      b.shapes.clear();
      b.distinct = 0;
    }
    return b;
  }
}

/**
 * The grpc-js handler of ProbeService.GetTrafficShape over `recorder`
 * (behind the same validator-call authentication as Probe, applied by the
 * service wrapper). Without a recorder it answers UNIMPLEMENTED.
 */
export function trafficShapeHandler(
  recorder: TrafficShapeRecorder | undefined,
  logger: Logger,
): handleUnaryCall<GetTrafficShapeRequest, GetTrafficShapeResponse> {
  if (recorder === undefined) {
    return (_call, callback) =>
      callback({ code: 12, details: "this router does not record its traffic shape" });
  }
  return unaryHandler<GetTrafficShapeRequest, GetTrafficShapeResponse>(
    ProbeServiceService.getTrafficShape.path,
    logger,
    (call) => {
      if (call.request.model.length > MAX_MODEL_CHARS) {
        throw new TensorClawError("invalid_request", `model is longer than ${MAX_MODEL_CHARS} characters`, {
          param: "model",
        });
      }
      return recorder.report(call.request.model, recorder.now());
    },
  );
}
