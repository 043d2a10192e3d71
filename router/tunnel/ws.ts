import type { IncomingMessage, Server } from "node:http";
import type { Duplex } from "node:stream";
import { type WebSocket, WebSocketServer } from "ws";
import { tlsExporterBinding } from "../../common/channel-binding.js";
import {
  type ChannelClosed,
  type ChannelCloseKind,
  CLOSE_CODES,
  closeKindFromWs,
  wsCloseReason,
} from "../../common/frame-channel.js";
import { DEFAULT_WS_HIGH_WATER_BYTES, WsFrameChannel } from "../../common/ws-frame-channel.js";
import type { ChannelAcceptor } from "./grpc.js";
import { DEFAULT_WS_KEEPALIVE_MS } from "./options.js";

/** The HTTP path of the WebSocket fallback (tunnel.proto). */
export const TUNNEL_WS_PATH = "/v1/tunnel";

/** Settings of the WebSocket tunnel endpoint. */
export interface TunnelWsSettings {
  /** Largest accepted message; larger ones close the socket with 1009. */
  readonly maxMessageBytes: number;
  /** Path to upgrade on (default `/v1/tunnel`). */
  readonly path?: string;
  /** WebSocket ping interval; a socket that misses one pong is dropped (default 30 s). */
  readonly keepaliveMs?: number;
  /** Bytes queued on a socket above which `send` asks the session to wait (default 1 MiB). */
  readonly highWaterBytes?: number;
  /** Called with a socket upgraded to a tunnel (it is no longer an HTTP connection). */
  readonly onUpgraded?: (socket: Duplex) => void;
}

/** A running WebSocket tunnel endpoint. */
export interface TunnelWsEndpoint {
  /** Detaches from the HTTP server and closes every tunnel socket with 1001. */
  close(): void;
}

/**
 * Serves the tunnel over WebSocket on an existing http.Server: upgrades on
 * the tunnel path (other paths are left to other upgrade listeners, or
 * answered 404 when there are none), without per-message compression, with
 * the size limit enforced by `ws` before a message is buffered.
 */
export function attachTunnelWs(server: Server, hub: ChannelAcceptor, s: TunnelWsSettings): TunnelWsEndpoint {
  const path = s.path ?? TUNNEL_WS_PATH;
  const wss = new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    maxPayload: s.maxMessageBytes,
    clientTracking: true,
  });
  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const pathname = (req.url ?? "").split("?", 1)[0];
    if (pathname !== path) {
      if (server.listenerCount("upgrade") === 1) {
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      }
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      s.onUpgraded?.(socket);
      hub.accept(
        new WsServerChannel(ws, req.socket.remoteAddress ?? "unknown", {
          // Over https this is the TLSSocket the miner's TLS ends on: the value its Hello must carry.
          channelBinding: tlsExporterBinding(req.socket),
          keepaliveMs: s.keepaliveMs ?? DEFAULT_WS_KEEPALIVE_MS,
          maxMessageBytes: s.maxMessageBytes,
          highWaterBytes: s.highWaterBytes ?? DEFAULT_WS_HIGH_WATER_BYTES,
        }),
      );
    });
  };
  server.on("upgrade", onUpgrade);
  return {
    close: () => {
      server.off("upgrade", onUpgrade);
      for (const ws of wss.clients) ws.close(CLOSE_CODES.going_away, "router closing");
      wss.close();
    },
  };
}

/** A FrameChannel over one server-side WebSocket. */
export class WsServerChannel extends WsFrameChannel {
  #keepalive: NodeJS.Timeout | undefined;
  #awaitingPong = false;
  /** Set when `ws` itself rejects a message (too big, bad frame) before it closes the socket. */
  #fault: ChannelClosed | undefined;
  readonly #binding: Uint8Array | undefined;

  constructor(
    ws: WebSocket,
    peer: string,
    opts: {
      keepaliveMs: number;
      highWaterBytes: number;
      maxMessageBytes: number;
      /** The connection's tls-exporter value; empty on TLS without one (1.2), undefined on plain ws. */
      channelBinding?: Uint8Array | undefined;
    },
  ) {
    super(ws, peer, opts.highWaterBytes, "text messages are a protocol error; send binary protobuf");
    this.#binding = opts.channelBinding;
    nameOwnCloses(ws, opts.maxMessageBytes);
    ws.on("error", (err: Error & { code?: string }) => {
      // `ws` reports protocol faults (it then closes with 1009 / 1002 / 1007) as WS_ERR_* codes;
      // anything else is the network failing under us.
      const code = err.code ?? "";
      const kind: ChannelCloseKind =
        code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH"
          ? "too_big"
          : code.startsWith("WS_ERR_")
            ? "invalid"
            : "going_away";
      this.#fault ??= { kind, reason: err.message, remote: kind === "going_away" };
    });
    ws.on("close", (code: number, reason: Buffer) => {
      this.finish(
        this.#fault ?? {
          kind: closeKindFromWs(code),
          reason: reason.toString() || `closed (${code})`,
          remote: true,
        },
      );
    });
    ws.on("pong", () => {
      this.#awaitingPong = false;
    });
    this.#keepalive = setInterval(() => {
      if (this.#awaitingPong) {
        this.finish({ kind: "timeout", reason: "WebSocket pong missing", remote: false });
        ws.terminate();
        return;
      }
      this.#awaitingPong = true;
      ws.ping();
    }, opts.keepaliveMs);
    this.#keepalive.unref();
  }

  channelBinding(): Uint8Array | undefined {
    return this.#binding;
  }

  send(message: Uint8Array): boolean {
    if (this.closed) return false;
    return this.sendCounted(message);
  }

  protected closeTransport(kind: ChannelCloseKind, reason: string): void {
    this.finish({ kind, reason, remote: false });
    this.ws.close(CLOSE_CODES[kind], wsCloseReason(reason));
  }

  protected override finish(info: ChannelClosed): void {
    clearInterval(this.#keepalive);
    super.finish(info);
  }
}

/**
 * `ws` closes a socket by itself when a message breaks its rules (too big,
 * a bad frame), sending the close code alone; the protocol promises a
 * reason that names the fault, so those closes get one here.
 */
function nameOwnCloses(ws: WebSocket, maxMessageBytes: number): void {
  const close = ws.close.bind(ws);
  ws.close = (code?: number, data?: string | Buffer): void => {
    close(code, data ?? ownCloseReason(code, maxMessageBytes));
  };
}

function ownCloseReason(code: number | undefined, maxMessageBytes: number): string | undefined {
  switch (code) {
    case 1009:
      return `message larger than the ${maxMessageBytes} byte limit`;
    case 1002:
      return "WebSocket protocol error (bad frame)";
    case 1007:
      return "invalid data in a WebSocket frame";
    default:
      return undefined;
  }
}
