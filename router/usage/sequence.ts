import { randomBytes } from "node:crypto";
import { TensorClawError } from "../../common/errors.js";
import { ORIGIN_PATTERN } from "../ledger/ledger.js";
import type { UsageEvent, UsageSink } from "./event.js";

/**
 * Gives each usage event the router's idempotency key before it reaches the
 * recorder: `origin` (random, drawn once per router process start) and
 * `seq`, a counter per (origin, miner hotkey) from 0.
 *
 * Why: keyed by request id, the ledger must remember one string per request
 * for a whole day (about 90 bytes each in Redis). An (origin, seq) pair is
 * dense per miner, so the ledger can remember it as one bit of a bitmap
 * (see router/ledger/lua/record.lua). The pair travels with the event
 * through the spool, so a replay after a crash or a restart carries the
 * original pair and is recognised; a new process draws a new origin, so its
 * counters never collide with an old process's.
 */

/** A fresh origin: 16 hex characters (64 random bits). */
export function newUsageOrigin(random: (bytes: number) => Buffer = randomBytes): string {
  return random(8).toString("hex");
}

/** A UsageSink that stamps `origin`/`seq` on each event and hands it on. */
export class UsageSequencer implements UsageSink {
  readonly origin: string;
  readonly #inner: UsageSink;
  /** Miner hotkey → next seq. One entry per miner this process served. */
  readonly #next = new Map<string, number>();

  constructor(inner: UsageSink, origin: string) {
    if (!ORIGIN_PATTERN.test(origin)) {
      throw new TensorClawError("config_invalid", "usage origin must be 1-64 characters of [0-9A-Za-z_-]");
    }
    this.origin = origin;
    this.#inner = inner;
  }

  record(event: UsageEvent): void {
    this.#inner.record(this.#stamp(event));
  }

  recordDurably(event: UsageEvent): Promise<void> {
    const stamped = this.#stamp(event);
    if (this.#inner.recordDurably !== undefined) return this.#inner.recordDurably(stamped);
    this.#inner.record(stamped);
    return Promise.resolve();
  }

  #stamp(event: UsageEvent): UsageEvent {
    const seq = this.#next.get(event.minerHotkey) ?? 0;
    this.#next.set(event.minerHotkey, seq + 1);
    // Field by field, not a spread: every event then has one shape, which
    // keeps the recorder's and ledger's property reads monomorphic (a spread
    // here halved the recording rate).
    return {
      requestId: event.requestId,
      minerHotkey: event.minerHotkey,
      model: event.model,
      promptTokens: event.promptTokens,
      completionTokens: event.completionTokens,
      outcome: event.outcome,
      startedAtMs: event.startedAtMs,
      finishedAtMs: event.finishedAtMs,
      origin: this.origin,
      seq,
      paid: event.paid,
      billing: event.billing,
    };
  }
}
