import { chunkPayloadBytes } from "../../common/chunk-credit.js";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import {
  type Cancel,
  type InferenceRequest,
  MinerFrame,
  RequestErrorCode,
  type ResponseChunk,
} from "../../gen/tensorclaw/v1/tunnel.js";
import type { RawTunnelClient } from "./raw-tunnel-client.js";

/** What the fake miner does with one request. */
export interface RequestPlan {
  /** Text of each chunk, in order. */
  readonly chunks: readonly string[];
  /** Terminal frame after the chunks: usage (default) or an error; "hang" sends nothing more. */
  readonly end?:
    | { usage: [number, number] }
    | { error: RequestErrorCode; message: string; httpStatus?: number }
    | "hang";
  /** Finish reason on the last chunk (default none). */
  readonly finishReason?: FinishReason;
  /** Each chunk carries one logprob entry for its text (logprob -(i+1)/10, one alternative "alt"). */
  readonly logprobs?: boolean;
  /** The `choice_index` of each chunk, in order (default 0 for all). */
  readonly choiceIndexes?: readonly number[];
  /** `system_fingerprint` on the first chunk (default none). */
  readonly fingerprint?: string;
}

/** Options of a FakeMiner. */
export interface FakeMinerOptions {
  /** The plan per request (default: 3 chunks "a","b","c" then usage 1/3). */
  readonly plan?: (req: InferenceRequest) => RequestPlan;
  /** Follow flow-control credit (default true); false sends everything at once. */
  readonly respectCredit?: boolean;
  /** Chunks sent per request per scheduling turn (default 1, which interleaves requests). */
  readonly chunksPerTurn?: number;
}

interface Running {
  readonly req: InferenceRequest;
  readonly plan: RequestPlan;
  /** Chunks pre-encoded once (the benchmark relays millions). */
  readonly encoded: Uint8Array[];
  readonly sizes: number[];
  credit: number;
  sent: number;
  done: boolean;
}

/**
 * A scripted miner on top of a RawTunnelClient (after its handshake): it
 * serves every InferenceRequest from a plan, honours credit and cancel, and
 * records what the router sent, so tests can assert on the miner's view.
 */
export class FakeMiner {
  readonly requests: InferenceRequest[] = [];
  /** When each of `requests` arrived (performance.now) and how many were being served then. */
  readonly arrivals: { atMs: number; inFlight: number }[] = [];
  readonly cancels: Cancel[] = [];
  /** Total credit granted per request id. */
  readonly credits = new Map<number, number>();
  /** Largest number of requests served at once. */
  maxConcurrent = 0;
  readonly #client: RawTunnelClient;
  readonly #plan: (req: InferenceRequest) => RequestPlan;
  readonly #respectCredit: boolean;
  readonly #perTurn: number;
  readonly #running = new Map<number, Running>();
  #scheduled = false;
  #listeners: (() => void)[] = [];

  constructor(client: RawTunnelClient, opts: FakeMinerOptions = {}) {
    this.#client = client;
    this.#plan = opts.plan ?? (() => ({ chunks: ["a", "b", "c"], end: { usage: [1, 3] } }));
    this.#respectCredit = opts.respectCredit ?? true;
    this.#perTurn = opts.chunksPerTurn ?? 1;
    client.onFrame = (f) => {
      switch (f.kind?.$case) {
        case "request":
          this.#onRequest(f.kind.value);
          break;
        case "credit": {
          const { requestId, bytes } = f.kind.value;
          this.credits.set(requestId, (this.credits.get(requestId) ?? 0) + bytes);
          const r = this.#running.get(requestId);
          if (r !== undefined) {
            r.credit += bytes;
            this.#schedule();
          }
          break;
        }
        case "cancel":
          this.cancels.push(f.kind.value);
          this.#onCancel(f.kind.value.requestId);
          break;
        default:
          break;
      }
      this.#notify();
    };
  }

  /** Requests still being served. */
  get active(): number {
    return this.#running.size;
  }

  /** Resolves once `cond()` holds, re-checked after every router frame and turn. */
  until(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#listeners = this.#listeners.filter((l) => l !== check);
        reject(new Error(`fake miner: condition not met within ${timeoutMs} ms`));
      }, timeoutMs);
      const check = () => {
        if (!cond()) return;
        clearTimeout(timer);
        this.#listeners = this.#listeners.filter((l) => l !== check);
        resolve();
      };
      this.#listeners.push(check);
    });
  }

  #onRequest(req: InferenceRequest): void {
    this.requests.push(req);
    this.arrivals.push({ atMs: performance.now(), inFlight: this.#running.size });
    const plan = this.#plan(req);
    const encoded: Uint8Array[] = [];
    const sizes: number[] = [];
    plan.chunks.forEach((text, i) => {
      const last = i === plan.chunks.length - 1;
      const chunk: ResponseChunk = {
        requestId: req.requestId,
        contentDelta: text,
        toolCalls: [],
        finishReason: last ? (plan.finishReason ?? FinishReason.FINISH_REASON_UNSPECIFIED) : 0,
        choiceIndex: plan.choiceIndexes?.[i] ?? 0,
        systemFingerprint: i === 0 ? (plan.fingerprint ?? "") : "",
        embeddings: [],
        reasoningDelta: "",
        logprobs:
          plan.logprobs === true
            ? [{ token: text, logprob: -(i + 1) / 10, topLogprobs: [{ token: "alt", logprob: -5 }] }]
            : [],
      };
      encoded.push(MinerFrame.encode({ kind: { $case: "chunk", value: chunk } }).finish());
      sizes.push(chunkPayloadBytes(chunk));
    });
    this.#running.set(req.requestId, {
      req,
      plan,
      encoded,
      sizes,
      credit: req.initialCreditBytes,
      sent: 0,
      done: false,
    });
    this.maxConcurrent = Math.max(this.maxConcurrent, this.#running.size);
    this.#schedule();
  }

  #onCancel(requestId: number): void {
    const r = this.#running.get(requestId);
    if (r === undefined) return;
    this.#running.delete(requestId);
    this.#client.push({
      kind: {
        $case: "error",
        value: {
          requestId,
          code: RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED,
          message: "cancelled",
          httpStatus: 0,
        },
      },
    });
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#turn();
    });
  }

  async #turn(): Promise<void> {
    if (this.#client.isClosed) return;
    if (this.#client.congested) await this.#client.whenWritable();
    let more = false;
    for (const r of [...this.#running.values()]) {
      for (let n = 0; n < this.#perTurn && r.sent < r.encoded.length; n++) {
        const size = r.sizes[r.sent] ?? 0;
        const fits = size <= r.credit || r.credit === r.req.initialCreditBytes;
        if (this.#respectCredit && !fits) break;
        this.#client.push(r.encoded[r.sent] as Uint8Array);
        r.credit -= size;
        r.sent++;
      }
      if (r.sent < r.encoded.length) {
        const size = r.sizes[r.sent] ?? 0;
        if (!this.#respectCredit || size <= r.credit || r.credit === r.req.initialCreditBytes) more = true;
        continue;
      }
      this.#finish(r);
    }
    if (more) this.#schedule();
    this.#notify();
  }

  #finish(r: Running): void {
    const end = r.plan.end ?? { usage: [1, r.encoded.length] };
    if (end === "hang") return;
    this.#running.delete(r.req.requestId);
    const requestId = r.req.requestId;
    if ("usage" in end) {
      this.#client.push({
        kind: {
          $case: "usage",
          value: { requestId, promptTokens: BigInt(end.usage[0]), completionTokens: BigInt(end.usage[1]) },
        },
      });
    } else {
      this.#client.push({
        kind: {
          $case: "error",
          value: { requestId, code: end.error, message: end.message, httpStatus: end.httpStatus ?? 0 },
        },
      });
    }
  }

  #notify(): void {
    for (const l of [...this.#listeners]) l();
  }
}
