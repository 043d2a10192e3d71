/**
 * The miner's side of the WebSocket tunnel fallback (for networks that
 * block HTTP/2): one `ws` client socket to the router's `/v1/tunnel`,
 * adapted to a FrameChannel. One binary message per stream message;
 * per-message compression off; a text message from the router is a protocol
 * fault. `ws` answers the router's WebSocket pings by itself.
 *
 * Back-pressure: `ws` has no drain event, so the channel counts bytes handed
 * to `send` whose write callback has not run yet; above `highWaterBytes`
 * `send` returns false, and `drain` fires once the count falls below half.
 */
import WebSocket from "ws";
import {
  type ChannelClosed,
  type ChannelCloseKind,
  CLOSE_CODES,
  closeKindFromWs,
  type FrameChannel,
  type FrameChannelHandlers,
  wsCloseReason,
} from "../../common/frame-channel.js";

/** Settings of a WebSocket tunnel dial. */
export interface WsDialOptions {
  /** Largest message accepted from the router, in bytes. */
  readonly maxReceiveBytes?: number;
  /** Unsent bytes above which `send` asks the session to wait. Default 1 MiB. */
  readonly highWaterBytes?: number;
  /** How long the opening handshake may take. Default 10 s. */
  readonly handshakeTimeoutMs?: number;
  /** PEM roots for wss://; default Node's roots (including NODE_EXTRA_CA_CERTS). */
  readonly trustedCas?: string;
}

/** Opens a tunnel socket to `url` (ws:// or wss://). Failures surface as the channel closing. */
export function dialWs(url: string, opts: WsDialOptions = {}): FrameChannel {
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    maxPayload: opts.maxReceiveBytes ?? 16 * 1024 * 1024,
    handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
    ...(opts.trustedCas === undefined ? {} : { ca: opts.trustedCas }),
  });
  const u = new URL(url);
  return new WsClientChannel(ws, u.host, opts.highWaterBytes ?? 1024 * 1024);
}

class WsClientChannel implements FrameChannel {
  readonly transport = "ws" as const;
  readonly peer: string;
  readonly #ws: WebSocket;
  readonly #highWater: number;
  #handlers: FrameChannelHandlers | undefined;
  #early: Buffer[] = [];
  #unsent = 0;
  #wantDrain = false;
  #localClose: { kind: ChannelCloseKind; reason: string } | undefined;
  #closedInfo: ChannelClosed | undefined;
  #lastError = "";

  constructor(ws: WebSocket, peer: string, highWater: number) {
    this.#ws = ws;
    this.peer = peer;
    this.#highWater = highWater;
    ws.binaryType = "nodebuffer";
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      if (this.closed) return;
      if (!isBinary) {
        this.close("invalid", "text message on the tunnel");
        return;
      }
      if (this.#handlers === undefined) this.#early.push(data);
      else this.#handlers.message(data);
    });
    ws.on("error", (err: Error) => {
      // 'close' follows every error; keep the cause for its reason.
      this.#lastError = err.message;
    });
    ws.on("close", (code: number, reason: Buffer) => this.#ended(code, reason.toString("utf8")));
  }

  get closed(): boolean {
    return this.#closedInfo !== undefined || this.#localClose !== undefined;
  }

  send(message: Uint8Array): boolean {
    if (this.closed) return false;
    if (this.#ws.readyState !== WebSocket.OPEN) {
      // The router speaks first, so nothing is sent before open; be safe anyway.
      this.close("internal", "send before the socket opened");
      return false;
    }
    this.#unsent += message.byteLength;
    this.#ws.send(message, { binary: true, compress: false }, () => this.#written(message.byteLength));
    if (this.#unsent > this.#highWater) {
      this.#wantDrain = true;
      return false;
    }
    return true;
  }

  #written(bytes: number): void {
    this.#unsent -= bytes;
    if (this.#wantDrain && this.#unsent <= this.#highWater / 2 && !this.closed) {
      this.#wantDrain = false;
      this.#handlers?.drain();
    }
  }

  start(handlers: FrameChannelHandlers): void {
    this.#handlers = handlers;
    const early = this.#early;
    this.#early = [];
    for (const b of early) {
      if (this.closed) break;
      handlers.message(b);
    }
    if (this.#closedInfo !== undefined) handlers.closed(this.#closedInfo);
  }

  close(kind: ChannelCloseKind, reason: string): void {
    if (this.closed) return;
    this.#localClose = { kind, reason };
    const state = this.#ws.readyState;
    if (state === WebSocket.OPEN) {
      this.#ws.close(CLOSE_CODES[kind], wsCloseReason(reason));
      // A peer that never answers the close frame must not hold the socket.
      const timer = setTimeout(() => this.#ws.terminate(), 2000);
      timer.unref();
      this.#ws.once("close", () => clearTimeout(timer));
    } else {
      this.#ws.terminate();
    }
  }

  #ended(code: number, reason: string): void {
    if (this.#closedInfo !== undefined) return;
    const local = this.#localClose;
    this.#closedInfo =
      local !== undefined
        ? { kind: local.kind, reason: local.reason, remote: false }
        : {
            kind: closeKindFromWs(code),
            reason: reason || this.#lastError || `close code ${code}`,
            remote: true,
          };
    this.#handlers?.closed(this.#closedInfo);
  }
}
