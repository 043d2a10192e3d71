/**
 * TLS channel binding of the tunnel hello (tunnel.proto, Hello.channel_binding):
 * RFC 9266 "tls-exporter", the keying material both ends of one TLS
 * connection derive alike and no relay can make equal across two
 * connections. Used where an adapter can reach its TLS socket (WebSocket
 * over wss on both sides; grpc-js exposes no socket, so gRPC has none).
 */
import { timingSafeEqual } from "node:crypto";
import { TLSSocket } from "node:tls";

/** The exporter label RFC 9266 fixes for "tls-exporter". */
export const CHANNEL_BINDING_LABEL = "EXPORTER-Channel-Binding";

/** Length of the binding value in bytes (RFC 9266). */
export const CHANNEL_BINDING_BYTES = 32;

/**
 * The tls-exporter value of `socket` when it is a connected TLS socket,
 * else undefined (plain TCP, not yet or no longer connected, or an exporter
 * the TLS stack refuses).
 */
export function tlsExporterBinding(socket: unknown): Uint8Array | undefined {
  if (!(socket instanceof TLSSocket) || !socket.encrypted || socket.destroyed) return undefined;
  try {
    // An empty context, not an absent one: the two differ under TLS 1.2 and RFC 9266 says empty.
    const value = socket.exportKeyingMaterial(CHANNEL_BINDING_BYTES, CHANNEL_BINDING_LABEL, Buffer.alloc(0));
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  } catch {
    // Throws before the handshake completes: there is no binding to give yet.
    return undefined;
  }
}

/** How a hello's binding compares with the router's own value for the connection. */
export type BindingVerdict = "absent" | "unchecked" | "match" | "mismatch" | "malformed";

/**
 * Judges the binding a miner sent (`claimed`, empty when it sent none)
 * against the router's own value (`own`, undefined when the router sees no
 * TLS on this tunnel: it cannot check, so a well-formed claim is
 * "unchecked"; the signature still covers it).
 */
export function judgeChannelBinding(claimed: Uint8Array, own: Uint8Array | undefined): BindingVerdict {
  if (claimed.length === 0) return "absent";
  if (claimed.length !== CHANNEL_BINDING_BYTES) return "malformed";
  if (own === undefined) return "unchecked";
  return own.length === claimed.length && timingSafeEqual(own, claimed) ? "match" : "mismatch";
}
