import { chunkAnswerBytes, chunkPayloadBytes } from "../../common/chunk-credit.js";
import { logprobsProblem } from "../../common/chunk-logprobs.js";
import { type Clock, systemClock, type Timer } from "../../common/clock.js";
import { RequestErrorCode, type ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import type { ChunkCheck } from "./kind-check.js";
import type { InferenceCall, RelayedChoice, RelayedText, TunnelEvent } from "./types.js";

/** What a call needs from the session that carries it. */
export interface CallHost {
  /** Queues a Cancel frame for this request. */
  sendCancel(requestId: number, reason: string): void;
  /** Queues a Credit frame for this request. */
  sendCredit(requestId: number, bytes: number): void;
  /** The caller-facing stream ended; the miner may still be working (see `released`). */
  ended(call: TunnelCall): void;
  /** The miner is done with the request (or gave up waiting): free its concurrency slot. */
  released(call: TunnelCall): void;
}

/** Limits of one call. */
export interface CallLimits {
  /** Starting credit sent in the InferenceRequest, in bytes of chunk payload. */
  readonly initialCreditBytes: number;
  /** How long a cancelled request keeps its concurrency slot waiting for the miner's terminal frame. */
  readonly cancelGraceMs: number;
  /**
   * Choices the request asked for (`n`; default 1): a chunk naming
   * `choice_index` at or past it fails the request with PROTOCOL.
   */
  readonly choices?: number;
}

interface ChoiceText {
  content: string;
  reasoning: string;
  tools: string;
  bytes: number;
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ done: true, value: undefined });

/**
 * One request in flight on a tunnel, as the caller sees it (an
 * InferenceCall) and as the session feeds it (chunk / usage / error).
 *
 * Flow control: the router's view of the miner's credit is
 * `initial + granted - received`. Chunks wait in a queue until the caller
 * reads them; credit is granted back only for what the caller consumed, so
 * the queue never holds more than the initial credit (plus one oversize
 * chunk, which the protocol allows when nothing is outstanding). A miner
 * that sends beyond its credit, or more logprobs in a chunk than the
 * protocol allows (common/chunk-logprobs.ts), or a chunk of a choice the
 * request did not ask for, fails the request with PROTOCOL.
 */
export class TunnelCall implements InferenceCall, AsyncIterator<TunnelEvent> {
  readonly requestId: number;
  readonly model: string;
  readonly #host: CallHost;
  readonly #limits: CallLimits;
  readonly #maxQueuedChunks: number;
  #queue: TunnelEvent[] = [];
  #head = 0;
  #waiter: ((r: IteratorResult<TunnelEvent>) => void) | undefined;
  /** Credit as the router accounts it (may go negative after one oversize chunk). */
  #credit: number;
  #consumedUngranted = 0;
  #relayed = 0;
  /** What was relayed, per choice (index = `choice_index`). */
  readonly #choices: ChoiceText[] = [];
  readonly #choiceLimit: number;
  /** What this request's kind allows back (kind-check.ts); undefined: no check beyond the protocol's. */
  readonly #check: ChunkCheck | undefined;
  #queuedChunks = 0;
  /** A terminal event is queued (or delivered); nothing more is accepted. */
  #terminal = false;
  /** The caller has read the terminal event or stopped reading. */
  #finished = false;
  /** The miner sent its terminal frame, or we stopped waiting for it. */
  #minerDone = false;
  readonly #clock: Clock;
  #deadlineTimer: Timer | undefined;
  #graceTimer: Timer | undefined;
  #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => {
    this.#abandon(RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED, "the caller went away");
  };

  constructor(
    requestId: number,
    model: string,
    host: CallHost,
    limits: CallLimits,
    clock: Clock = systemClock,
    check?: ChunkCheck,
  ) {
    this.requestId = requestId;
    this.#clock = clock;
    this.model = model;
    this.#host = host;
    this.#limits = limits;
    this.#credit = limits.initialCreditBytes;
    this.#choiceLimit = Math.max(1, limits.choices ?? 1);
    this.#check = check;
    // Zero-payload chunks cost no credit, so their number needs its own bound.
    this.#maxQueuedChunks = limits.initialCreditBytes + 256;
  }

  /**
   * Starts the deadline and the abort listener. Called once the request frame is queued.
   * A deadline past what a timer can hold (2^31-1 ms, about 24.8 days; the wire allows
   * 2^32-1) is held for that long instead (the Clock contract).
   */
  arm(deadlineMs: number, signal: AbortSignal | undefined): void {
    this.#deadlineTimer = this.#clock.setTimeout(
      () => {
        this.#abandon(RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT, `deadline of ${deadlineMs} ms exceeded`);
      },
      deadlineMs,
      { unref: true },
    );
    if (signal !== undefined) {
      this.#signal = signal;
      signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  // ---- caller side (InferenceCall) ----

  /** The miner's answer; single consumer. Breaking out of `for await` cancels the request. */
  get events(): AsyncIterable<TunnelEvent> {
    return { [Symbol.asyncIterator]: () => this };
  }

  /** UTF-8 bytes of answer (not logprobs: see chunkAnswerBytes) handed to the caller so far. */
  readonly relayedBytes = (): number => this.#relayed;

  readonly relayedText = (): RelayedText => {
    const c = this.#choices;
    // One choice (nearly every request) needs no joining.
    if (c.length <= 1) {
      const only = c[0];
      return { content: only?.content ?? "", reasoning: only?.reasoning ?? "", tools: only?.tools ?? "" };
    }
    return {
      content: c.map((x) => x?.content ?? "").join(""),
      reasoning: c.map((x) => x?.reasoning ?? "").join(""),
      tools: c.map((x) => x?.tools ?? "").join(""),
    };
  };

  readonly relayedChoices = (): readonly RelayedChoice[] => {
    const out: RelayedChoice[] = [];
    for (let i = 0; i < this.#choices.length; i++) {
      const x = this.#choices[i];
      out.push(x === undefined ? { content: "", reasoning: "", tools: "", bytes: 0 } : { ...x });
    }
    return out;
  };

  /** Sends Cancel to the miner and ends `events` with a CANCELLED error. Idempotent. */
  cancel(reason: string): void {
    this.#abandon(RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED, reason);
  }

  /** AsyncIterator: the next event, waiting for one when none is queued. */
  next(): Promise<IteratorResult<TunnelEvent>> {
    if (this.#head < this.#queue.length) return Promise.resolve(this.#take());
    if (this.#finished || this.#waiter !== undefined) return Promise.resolve(DONE);
    return new Promise((resolve) => {
      this.#waiter = resolve;
    });
  }

  /** AsyncIterator: the caller stopped reading early; that cancels the request. */
  return(): Promise<IteratorResult<TunnelEvent>> {
    this.#abandon(RequestErrorCode.REQUEST_ERROR_CODE_CANCELLED, "the caller stopped reading");
    this.#finish();
    return Promise.resolve(DONE);
  }

  // ---- session side ----

  /** True while the call still holds a concurrency slot. */
  get holdsSlot(): boolean {
    return !this.#minerDone;
  }

  /** True once the caller-facing stream has its terminal event. */
  get terminal(): boolean {
    return this.#terminal;
  }

  /** A chunk from the miner. */
  onChunk(chunk: ResponseChunk): void {
    if (this.#terminal) return;
    if (chunk.choiceIndex >= this.#choiceLimit) {
      this.#host.sendCancel(this.requestId, "choice out of range");
      this.#endWith(
        RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL,
        `the miner sent choice ${chunk.choiceIndex} of a request for ${this.#choiceLimit}`,
      );
      this.#startGrace();
      return;
    }
    const problem = logprobsProblem(chunk);
    if (problem !== undefined) {
      this.#host.sendCancel(this.requestId, "too many logprobs");
      this.#endWith(RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL, `the miner sent ${problem}`);
      this.#startGrace();
      return;
    }
    const wrong = this.#check?.chunk(chunk);
    if (wrong !== undefined) {
      this.#host.sendCancel(this.requestId, "invalid answer");
      this.#endWith(RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL, `the miner sent ${wrong}`);
      this.#startGrace();
      return;
    }
    const bytes = chunkPayloadBytes(chunk);
    const allowedOversize = this.#credit >= this.#limits.initialCreditBytes;
    if ((bytes > this.#credit && !allowedOversize) || this.#queuedChunks >= this.#maxQueuedChunks) {
      this.#host.sendCancel(this.requestId, "flow-control credit overrun");
      this.#endWith(
        RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL,
        "the miner overran its flow-control credit",
      );
      this.#startGrace();
      return;
    }
    this.#credit -= bytes;
    this.#queuedChunks++;
    this.#push({ type: "chunk", chunk });
  }

  /** The miner's terminal Usage frame. */
  onUsage(promptTokens: bigint, completionTokens: bigint): void {
    this.#minerFinished();
    if (this.#terminal) return;
    const incomplete = this.#check?.end();
    if (incomplete !== undefined) {
      this.#endWith(RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL, `the miner sent ${incomplete}`);
      return;
    }
    this.#endWithEvent({
      type: "usage",
      promptTokens: toSafeNumber(promptTokens),
      completionTokens: toSafeNumber(completionTokens),
    });
  }

  /** The miner's terminal RequestError frame. */
  onError(code: RequestErrorCode, message: string, httpStatus = 0): void {
    this.#minerFinished();
    if (this.#terminal) return;
    // The backend's status, when the miner says there was one (a claim: upstream.ts bounds it).
    if (httpStatus !== 0) this.#endWithEvent({ type: "error", code, message, httpStatus });
    else this.#endWith(code, message);
  }

  /**
   * The tunnel is gone: chunks already queued are still delivered, then the
   * error. The slot is freed at once (there is no miner left to wait for).
   */
  fail(code: RequestErrorCode, message: string): void {
    this.#minerFinished();
    if (this.#terminal) return;
    this.#endWith(code, message);
  }

  // ---- internals ----

  #take(): IteratorResult<TunnelEvent> {
    const event = this.#queue[this.#head] as TunnelEvent;
    this.#queue[this.#head] = undefined as unknown as TunnelEvent;
    this.#head++;
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    }
    if (event.type === "chunk") {
      this.#queuedChunks--;
      const chunk = event.chunk;
      const answer = chunkAnswerBytes(chunk);
      // Logprob tokens, the fingerprint and vectors cost credit like text but are not part of
      // the answer: the usage bounds built on relayedBytes() must not grow with them.
      const bytes =
        chunk.logprobs.length === 0 && chunk.systemFingerprint === "" && chunk.embeddings.length === 0
          ? answer
          : chunkPayloadBytes(chunk);
      this.#relayed += answer;
      // Kept per choice for the router's own token count (V8 joins these cheaply, as ropes).
      let text = this.#choices[chunk.choiceIndex];
      if (text === undefined) {
        text = { content: "", reasoning: "", tools: "", bytes: 0 };
        this.#choices[chunk.choiceIndex] = text;
      }
      text.bytes += answer;
      if (chunk.contentDelta !== "") text.content += chunk.contentDelta;
      if (chunk.reasoningDelta !== "") text.reasoning += chunk.reasoningDelta;
      for (const t of chunk.toolCalls) text.tools += t.functionName + t.argumentsDelta;
      this.#grant(bytes);
    } else {
      this.#finish();
    }
    return { done: false, value: event };
  }

  /** Returns consumed bytes to the miner in batches of half the window (like HTTP/2 WINDOW_UPDATE). */
  #grant(bytes: number): void {
    if (this.#terminal || bytes === 0) return;
    this.#consumedUngranted += bytes;
    if (this.#consumedUngranted * 2 >= this.#limits.initialCreditBytes) {
      const grant = this.#consumedUngranted;
      this.#consumedUngranted = 0;
      this.#credit += grant;
      this.#host.sendCredit(this.requestId, grant);
    }
  }

  #push(event: TunnelEvent): void {
    const waiter = this.#waiter;
    if (waiter !== undefined && this.#head === this.#queue.length) {
      this.#waiter = undefined;
      // Deliver directly, with the same bookkeeping as a dequeue.
      this.#queue.push(event);
      waiter(this.#take());
      return;
    }
    this.#queue.push(event);
  }

  /** The caller gave up (cancel, abort, deadline): drop queued chunks and end now. */
  #abandon(code: RequestErrorCode, reason: string): void {
    if (this.#terminal) return;
    this.#host.sendCancel(this.requestId, reason);
    this.#queue = [];
    this.#head = 0;
    this.#queuedChunks = 0;
    this.#endWith(code, reason);
    this.#startGrace();
  }

  #endWith(code: RequestErrorCode, message: string): void {
    this.#endWithEvent({ type: "error", code, message });
  }

  #endWithEvent(event: TunnelEvent): void {
    this.#terminal = true;
    this.#clearTimers(false);
    this.#push(event);
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.(DONE);
    this.#host.ended(this);
  }

  #startGrace(): void {
    if (this.#minerDone || this.#graceTimer !== undefined) return;
    this.#graceTimer = this.#clock.setTimeout(() => this.#minerFinished(), this.#limits.cancelGraceMs, {
      unref: true,
    });
  }

  #minerFinished(): void {
    if (this.#minerDone) return;
    this.#minerDone = true;
    this.#clearTimers(true);
    this.#host.released(this);
  }

  #clearTimers(includingGrace: boolean): void {
    if (this.#deadlineTimer !== undefined) {
      this.#clock.clearTimeout(this.#deadlineTimer);
      this.#deadlineTimer = undefined;
    }
    if (this.#signal !== undefined) {
      this.#signal.removeEventListener("abort", this.#onAbort);
      this.#signal = undefined;
    }
    if (includingGrace && this.#graceTimer !== undefined) {
      this.#clock.clearTimeout(this.#graceTimer);
      this.#graceTimer = undefined;
    }
  }
}

function toSafeNumber(n: bigint): number {
  return n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
}
