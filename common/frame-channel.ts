import { status as GrpcStatus } from "@grpc/grpc-js";

/**
 * The transport-neutral pipe a tunnel session talks through. One channel is
 * one tunnel stream: gRPC `TunnelService/Connect` or one WebSocket. It moves
 * whole serialized stream messages (`ConnectRequest` / `ConnectResponse`
 * bytes); framing into batches is the FrameBatcher's job, decoding the
 * session's. Adapters exist per transport and side (router: `router/tunnel/grpc.ts`,
 * `router/tunnel/ws.ts`; miner: `miner/tunnel/grpc.ts`, `miner/tunnel/ws.ts`),
 * all built on `BufferedFrameChannel` (frame-channel-base.ts); the WebSocket
 * ones on `WsFrameChannel` (ws-frame-channel.ts).
 */
export interface FrameChannel {
  /** Which transport carries this channel (for logs and the directory only). */
  readonly transport: ChannelTransport;
  /** Remote address, for logs. */
  readonly peer: string;
  /**
   * Queues one serialized stream message. The message is always accepted
   * (never dropped while the channel is open); the result says whether the
   * transport wants more now. After `false`, the caller should hold further
   * messages until the `drain` handler runs. Sending on a closed channel is a
   * no-op that returns false.
   */
  send(message: Uint8Array): boolean;
  /**
   * Installs the handlers. Called once, right after the channel is created;
   * messages that arrive before are held and replayed then.
   */
  start(handlers: FrameChannelHandlers): void;
  /**
   * Ends the channel with a reason the peer can read: a gRPC status (server
   * side) or a WebSocket close code (see `CLOSE_CODES`). Idempotent; the
   * `closed` handler runs once, with `remote: false`.
   */
  close(kind: ChannelCloseKind, reason: string): void;
  /** True once the channel is closed (by either side). */
  readonly closed: boolean;
  /**
   * The tls-exporter value of the TLS connection under this channel, as
   * tlsExporterBinding (common/channel-binding.ts) gives it: the value, empty
   * on TLS with no binding (TLS 1.2), undefined on no TLS. Absent where the
   * adapter cannot reach its TLS (gRPC). Both sides' WebSocket adapters give it.
   */
  channelBinding?(): Uint8Array | undefined;
}

export { DEFAULT_MAX_MESSAGE_BYTES } from "./frame-limits.js";

/** The transports a tunnel can use. */
export type ChannelTransport = "grpc" | "ws";

/** Callbacks from a channel to its session. */
export interface FrameChannelHandlers {
  /** One stream message as received (not yet decoded; its size is already within the limit). */
  message(bytes: Uint8Array): void;
  /** The transport accepts writes again after `send` returned false. */
  drain(): void;
  /** The channel ended; runs exactly once. */
  closed(info: ChannelClosed): void;
}

/**
 * Why a channel ends. Each kind maps to one gRPC status and one WebSocket
 * close code, so both transports report the same fault the same way.
 */
export type ChannelCloseKind =
  /** Orderly end (drain finished, peer hung up). */
  | "normal"
  /** A message did not decode, a text WS message, or frames out of order. */
  | "invalid"
  /** A message exceeded the size limit. */
  | "too_big"
  /** The handshake was refused (signature, freshness, replay, admission). */
  | "refused"
  /** The peer missed its hello or its pongs. */
  | "timeout"
  /** The endpoint is shutting down or the connection broke. */
  | "going_away"
  /** A bug on our side. */
  | "internal";

/** How a channel ended. */
export interface ChannelClosed {
  readonly kind: ChannelCloseKind;
  readonly reason: string;
  /** True when the peer or the network ended the channel, false when we did. */
  readonly remote: boolean;
}

/** gRPC status per close kind (server side ends the call with it). */
export const GRPC_CLOSE_STATUS: Readonly<Record<ChannelCloseKind, GrpcStatus>> = Object.freeze({
  normal: GrpcStatus.OK,
  invalid: GrpcStatus.INVALID_ARGUMENT,
  too_big: GrpcStatus.RESOURCE_EXHAUSTED,
  refused: GrpcStatus.PERMISSION_DENIED,
  timeout: GrpcStatus.DEADLINE_EXCEEDED,
  going_away: GrpcStatus.UNAVAILABLE,
  internal: GrpcStatus.INTERNAL,
});

/** WebSocket close code per close kind (RFC 6455 section 7.4.1). */
export const CLOSE_CODES: Readonly<Record<ChannelCloseKind, number>> = Object.freeze({
  normal: 1000,
  invalid: 1007,
  too_big: 1009,
  refused: 1008,
  timeout: 1008,
  going_away: 1001,
  internal: 1011,
});

/** The close kind a received gRPC status stands for (client side). */
export function closeKindFromGrpc(code: GrpcStatus): ChannelCloseKind {
  switch (code) {
    case GrpcStatus.OK:
      return "normal";
    case GrpcStatus.INVALID_ARGUMENT:
      return "invalid";
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return "too_big";
    case GrpcStatus.PERMISSION_DENIED:
    case GrpcStatus.UNAUTHENTICATED:
      return "refused";
    case GrpcStatus.DEADLINE_EXCEEDED:
      return "timeout";
    case GrpcStatus.INTERNAL:
      return "internal";
    default:
      return "going_away";
  }
}

/** The close kind a received WebSocket close code stands for (either side). */
export function closeKindFromWs(code: number): ChannelCloseKind {
  switch (code) {
    case 1000:
      return "normal";
    case 1003:
    case 1007:
      return "invalid";
    case 1009:
      return "too_big";
    case 1008:
      return "refused";
    case 1011:
      return "internal";
    default:
      return "going_away";
  }
}

/**
 * WebSocket close reasons are limited to 123 bytes of UTF-8; longer text is
 * cut (on a character boundary) so `close()` never throws.
 */
export function wsCloseReason(reason: string): string {
  const bytes = Buffer.from(reason, "utf8");
  if (bytes.length <= 123) return reason;
  let cut = 123;
  // Step back over UTF-8 continuation bytes (10xxxxxx).
  while (cut > 0 && ((bytes[cut] ?? 0) & 0xc0) === 0x80) cut--;
  return bytes.subarray(0, cut).toString("utf8");
}
