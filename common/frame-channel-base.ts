import type {
  ChannelClosed,
  ChannelCloseKind,
  ChannelTransport,
  FrameChannel,
  FrameChannelHandlers,
} from "./frame-channel.js";

/**
 * What every FrameChannel adapter (gRPC and WebSocket, router and miner
 * side) shares: messages that arrive before `start` are held and replayed
 * in order, nothing is delivered once the channel is closing, and the
 * `closed` handler runs exactly once, whenever the end is learnt (before
 * or after `start`).
 *
 * A subclass wires its transport's events to `deliver`, `drained` and
 * `finish`, and implements `send` and `closeTransport`. "Closing" begins at
 * `close()` or at the transport's end, whichever is first; "finished" is
 * when `closed` has been reported. A router-side adapter finishes at once
 * on `close()`; a miner-side one finishes when its transport confirms the
 * end, reporting the local kind and reason then.
 *
 * On the hot path `deliver` is one flag check and one call: no allocation.
 */
export abstract class BufferedFrameChannel implements FrameChannel {
  abstract readonly transport: ChannelTransport;
  readonly peer: string;
  #handlers: FrameChannelHandlers | undefined;
  #early: Uint8Array[] = [];
  #closing = false;
  #closedInfo: ChannelClosed | undefined;

  protected constructor(peer: string) {
    this.peer = peer;
  }

  /** True once the channel is closing or closed (by either side). */
  get closed(): boolean {
    return this.#closing;
  }

  start(handlers: FrameChannelHandlers): void {
    const early = this.#early;
    const closedBefore = this.#closedInfo;
    this.#early = [];
    this.#handlers = handlers;
    for (const m of early) {
      if (this.#closing) break;
      handlers.message(m);
    }
    if (closedBefore !== undefined) handlers.closed(closedBefore);
  }

  abstract send(message: Uint8Array): boolean;

  close(kind: ChannelCloseKind, reason: string): void {
    if (this.#closing) return;
    this.#closing = true;
    this.closeTransport(kind, reason);
  }

  /** Ends the transport for `close(kind, reason)`; runs once, with `closed` already true. */
  protected abstract closeTransport(kind: ChannelCloseKind, reason: string): void;

  /** True once `closed` has been reported (or is held for `start`). */
  protected get finished(): boolean {
    return this.#closedInfo !== undefined;
  }

  /** One received stream message: handed on, held until `start`, or dropped once closing. */
  protected deliver(bytes: Uint8Array): void {
    if (this.#closing) return;
    const handlers = this.#handlers;
    if (handlers === undefined) this.#early.push(bytes);
    else handlers.message(bytes);
  }

  /** The transport takes writes again. */
  protected drained(): void {
    if (!this.#closing) this.#handlers?.drain();
  }

  /** The channel ended: reports `info` once (later calls are ignored). */
  protected finish(info: ChannelClosed): void {
    if (this.#closedInfo !== undefined) return;
    this.#closing = true;
    this.#closedInfo = info;
    this.#handlers?.closed(info);
  }
}
