import type { ModelKind } from "../../common/request-kinds.js";
import { newTraceId } from "../../common/trace-id.js";
import type { SlotRequest, WaitEnd } from "../api/capacity-queue.js";

/** The Business API's capacity queue (CapacityQueue), as a probe waits in it. */
export interface ProbeQueue {
  /** Whether requests of `model` and `kind` wait already. */
  ahead(model: string, kind: ModelKind): boolean;
  /** How many requests of `model` and `kind` wait, probes included. */
  waiting(model: string, kind: ModelKind): number;
  wait(model: string, kind: ModelKind, req: SlotRequest, requestDeadlineMs: number): Promise<WaitEnd>;
  leave(req: SlotRequest): void;
}

/**
 * A probe of a full tunnel waiting in the capacity queue with the users of
 * its model. While users queue, every slot that frees goes to the next of
 * them at once; a probe that waited outside would never get one and would
 * end in the spare probe slot, where a miner knows it for a probe. In the
 * queue it takes its turn like a user (it is an account of its own, so it
 * is not starved), and takes a slot only on its own tunnel (it is picky:
 * a slot elsewhere passes to the waiter behind it).
 *
 * It takes a slot only while users wait too: a probe alone in the line
 * would follow its miner's release of a slot, which a user request seldom
 * does (ProbeService's 315baa3 note).
 */
export class QueuedProbe<T> implements SlotRequest {
  readonly account = `probe ${newTraceId()}`;
  readonly picky = true;
  /** Out of the queue's metrics, which count users. */
  readonly probe = true;
  /** What `send` returned, once the queue gave the probe its turn and its tunnel a slot. */
  sent: T | undefined;
  /** Resolves when the wait ends: "served" once `sent` is set. */
  readonly ended: Promise<WaitEnd>;
  readonly #queue: ProbeQueue;
  readonly #model: string;
  readonly #kind: ModelKind;
  readonly #send: () => T | undefined;
  readonly #probesInLine: () => number;

  /**
   * Joins the queue until `deadlineMs` (the queue's clock). `send` dispatches
   * the probe if its tunnel has an ordinary slot free (undefined if not);
   * `probesInLine` counts the probes waiting in this line, this one included.
   */
  constructor(
    queue: ProbeQueue,
    line: { readonly model: string; readonly kind: ModelKind },
    deadlineMs: number,
    send: () => T | undefined,
    probesInLine: () => number,
  ) {
    this.#queue = queue;
    this.#model = line.model;
    this.#kind = line.kind;
    this.#send = send;
    this.#probesInLine = probesInLine;
    this.ended = queue.wait(line.model, line.kind, this, deadlineMs);
  }

  /** Whether this probe waits in the line of `model` and `kind`. */
  inLine(model: string, kind: ModelKind): boolean {
    return this.#model === model && this.#kind === kind;
  }

  take(): boolean {
    if (this.#queue.waiting(this.#model, this.#kind) <= this.#probesInLine()) return false;
    const sent = this.#send();
    if (sent === undefined) return false;
    this.sent = sent;
    return true;
  }

  /** Leaves the queue (nothing once it was served). */
  leave(): void {
    if (this.sent === undefined) this.#queue.leave(this);
  }
}
