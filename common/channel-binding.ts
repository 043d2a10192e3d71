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

/** The only TLS version whose exporter binds a connection here (see tlsExporterBinding). */
export const CHANNEL_BINDING_TLS_VERSION = "TLSv1.3";

/**
 * The tls-exporter value of `socket` when it is a connected TLS 1.3 socket;
 * empty when it is TLS but gives no binding (TLS 1.2, or an exporter the
 * TLS stack refuses); undefined when it is no TLS socket at all. Under TLS
 * 1.2 the exporter binds only with the extended master secret (RFC 9266
 * section 4.2), which Node does not report; without it a relay can make two
 * connections share secrets (the triple handshake attack), so TLS 1.2 gives
 * no binding. The empty value still tells a router it is on TLS: a bound
 * hello there cannot come from a miner on this connection.
 */
export function tlsExporterBinding(socket: unknown): Uint8Array | undefined {
  if (!(socket instanceof TLSSocket) || !socket.encrypted) return undefined;
  if (socket.destroyed || socket.getProtocol() !== CHANNEL_BINDING_TLS_VERSION) return new Uint8Array(0);
  try {
    // An empty context, not an absent one: the two differ under TLS 1.2 and RFC 9266 says empty.
    const value = socket.exportKeyingMaterial(CHANNEL_BINDING_BYTES, CHANNEL_BINDING_LABEL, Buffer.alloc(0));
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  } catch {
    // Throws before the handshake completes: there is no binding to give yet.
    return new Uint8Array(0);
  }
}

/** How a hello's binding compares with the router's own value for the connection. */
export type BindingVerdict = "absent" | "unchecked" | "match" | "mismatch" | "malformed";

/**
 * Judges the binding a miner sent (`claimed`, empty when it sent none)
 * against the router's own value (`own`, from tlsExporterBinding: undefined
 * when the router sees no TLS on this tunnel, so it cannot check and a
 * well-formed claim is "unchecked", the signature still covering it; empty
 * on TLS without a binding, where any claim is a "mismatch").
 */
export function judgeChannelBinding(claimed: Uint8Array, own: Uint8Array | undefined): BindingVerdict {
  if (claimed.length === 0) return "absent";
  if (claimed.length !== CHANNEL_BINDING_BYTES) return "malformed";
  if (own === undefined) return "unchecked";
  return own.length === claimed.length && timingSafeEqual(own, claimed) ? "match" : "mismatch";
}
