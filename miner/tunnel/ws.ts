/**
 * The miner's side of the WebSocket tunnel fallback (for networks that
 * block HTTP/2): one `ws` client socket to the router's `/v1/tunnel`,
 * adapted to a FrameChannel. One binary message per stream message;
 * per-message compression off; a text message from the router is a protocol
 * fault. `ws` answers the router's WebSocket pings by itself. Buffering and
 * back-pressure are the shared `WsFrameChannel`'s.
 */
import type { IncomingMessage } from "node:http";
import WebSocket from "ws";
import { CHANNEL_BINDING_TLS_VERSION, tlsExporterBinding } from "../../common/channel-binding.js";
import {
  type ChannelCloseKind,
  CLOSE_CODES,
  closeKindFromWs,
  type FrameChannel,
  wsCloseReason,
} from "../../common/frame-channel.js";
import { DEFAULT_WS_HIGH_WATER_BYTES, WsFrameChannel } from "../../common/ws-frame-channel.js";
import { DEFAULT_MAX_RECEIVE_BYTES } from "./grpc.js";

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

/** How long the opening handshake may take unless told otherwise. */
export const DEFAULT_WS_HANDSHAKE_TIMEOUT_MS = 10_000;

/** How long a close waits for the router's close frame before dropping the socket. */
const CLOSE_HANDSHAKE_GRACE_MS = 2000;

/** Opens a tunnel socket to `url` (ws:// or wss://). Failures surface as the channel closing. */
export function dialWs(url: string, opts: WsDialOptions = {}): FrameChannel {
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    maxPayload: opts.maxReceiveBytes ?? DEFAULT_MAX_RECEIVE_BYTES,
    handshakeTimeout: opts.handshakeTimeoutMs ?? DEFAULT_WS_HANDSHAKE_TIMEOUT_MS,
    // wss only (ignored for ws://): the hello's channel binding needs TLS 1.3, and a relay must
    // not be able to strip it by offering TLS 1.2 (common/channel-binding.ts).
    minVersion: CHANNEL_BINDING_TLS_VERSION,
    ...(opts.trustedCas === undefined ? {} : { ca: opts.trustedCas }),
  });
  const u = new URL(url);
  return new WsClientChannel(ws, u.host, opts.highWaterBytes ?? DEFAULT_WS_HIGH_WATER_BYTES);
}

class WsClientChannel extends WsFrameChannel {
  #localClose: { kind: ChannelCloseKind; reason: string } | undefined;
  #lastError = "";
  #binding: Uint8Array | undefined;

  constructor(ws: WebSocket, peer: string, highWater: number) {
    super(ws, peer, highWater, "text message on the tunnel");
    // The upgrade response arrives on the connection the tunnel then uses; over wss its
    // socket is the TLSSocket whose exporter binds the Hello (tunnel.proto, channel_binding).
    ws.once("upgrade", (res: IncomingMessage) => {
      this.#binding = tlsExporterBinding(res.socket);
    });
    ws.on("error", (err: Error) => {
      // 'close' follows every error; keep the cause for its reason.
      this.#lastError = err.message;
    });
    ws.on("close", (code: number, reason: Buffer) => this.#ended(code, reason.toString("utf8")));
  }

  channelBinding(): Uint8Array | undefined {
    return this.#binding;
  }

  send(message: Uint8Array): boolean {
    if (this.closed) return false;
    if (this.ws.readyState !== WebSocket.OPEN) {
      // The router speaks first, so nothing is sent before open; be safe anyway.
      this.close("internal", "send before the socket opened");
      return false;
    }
    return this.sendCounted(message);
  }

  /** Closes the socket; the channel finishes on its 'close' event, reporting this kind and reason. */
  protected closeTransport(kind: ChannelCloseKind, reason: string): void {
    this.#localClose = { kind, reason };
    const ws = this.ws;
    if (ws.readyState === WebSocket.OPEN) {
      ws.close(CLOSE_CODES[kind], wsCloseReason(reason));
      // A peer that never answers the close frame must not hold the socket.
      const timer = setTimeout(() => ws.terminate(), CLOSE_HANDSHAKE_GRACE_MS);
      timer.unref();
      ws.once("close", () => clearTimeout(timer));
    } else {
      ws.terminate();
    }
  }

  #ended(code: number, reason: string): void {
    const local = this.#localClose;
    this.finish(
      local !== undefined
        ? { kind: local.kind, reason: local.reason, remote: false }
        : {
            kind: closeKindFromWs(code),
            reason: reason || this.#lastError || `close code ${code}`,
            remote: true,
          },
    );
  }
}
