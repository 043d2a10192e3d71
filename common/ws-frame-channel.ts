import type { WebSocket } from "ws";
import { BufferedFrameChannel } from "./frame-channel-base.js";

/** Unsent bytes above which a tunnel WebSocket asks its sender to wait, unless told otherwise. */
export const DEFAULT_WS_HIGH_WATER_BYTES = 1024 * 1024;

/** Options of every tunnel WebSocket send: one binary message, never compressed. */
const SEND_OPTIONS = Object.freeze({ binary: true, compress: false });

/**
 * The WebSocket layer both tunnel ends share, over {@link BufferedFrameChannel}:
 * one binary message per stream message, a text message is a protocol fault
 * (the channel closes "invalid" with `textReason`), and back-pressure by
 * counting.
 *
 * Back-pressure: `ws` has no drain event, so the channel counts bytes handed
 * to `ws.send` whose write callback has not run yet; above `highWaterBytes`
 * `send` returns false, and `drain` fires once the count falls to half the
 * mark, so a sender does not flap at the threshold.
 */
export abstract class WsFrameChannel extends BufferedFrameChannel {
  readonly transport = "ws" as const;
  protected readonly ws: WebSocket;
  readonly #highWater: number;
  /** Bytes handed to `ws.send` whose write has not completed yet. */
  #unsent = 0;
  #wantDrain = false;

  protected constructor(ws: WebSocket, peer: string, highWaterBytes: number, textReason: string) {
    super(peer);
    this.ws = ws;
    this.#highWater = highWaterBytes;
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (isBinary) this.deliver(data);
      else this.close("invalid", textReason);
    });
  }

  /** Queues one message on the socket; false once more than the high-water mark is unsent. */
  protected sendCounted(message: Uint8Array): boolean {
    const size = message.byteLength;
    this.#unsent += size;
    this.ws.send(message, SEND_OPTIONS, () => this.#written(size));
    if (this.#unsent > this.#highWater) {
      this.#wantDrain = true;
      return false;
    }
    return true;
  }

  #written(size: number): void {
    this.#unsent -= size;
    if (this.#wantDrain && this.#unsent <= this.#highWater / 2) {
      this.#wantDrain = false;
      this.drained();
    }
  }
}
