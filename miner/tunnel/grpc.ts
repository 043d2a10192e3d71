/**
 * The miner's side of the gRPC tunnel transport: one bidi call to
 * `TunnelService/Connect` on its own HTTP/2 connection, adapted to a
 * FrameChannel. The client is built from the generated service definition
 * with pass-through (de)serializers, because the session decodes router
 * messages itself (so a bad message is a protocol fault it can name) and
 * the batcher hands over ready-made envelopes.
 */
import { rootCertificates } from "node:tls";
import {
  type ChannelCredentials,
  type ClientDuplexStream,
  credentials,
  status as GrpcStatus,
  Metadata,
  makeGenericClientConstructor,
  type ServiceError,
  type StatusObject,
} from "@grpc/grpc-js";
import {
  type ChannelClosed,
  type ChannelCloseKind,
  closeKindFromGrpc,
  type FrameChannel,
} from "../../common/frame-channel.js";
import { BufferedFrameChannel } from "../../common/frame-channel-base.js";
import { TunnelServiceService } from "../../gen/tensorclaw/v1/tunnel.js";

/**
 * Node's bundled root CAs plus `extraPem`, as one PEM bundle. grpc-js given
 * no roots does not pick up NODE_EXTRA_CA_CERTS, so an extra CA has to be
 * passed explicitly, next to the public roots rather than instead of them.
 */
export function trustedRoots(extraPem?: string): string {
  return [...rootCertificates, ...(extraPem === undefined ? [] : [extraPem])].join("\n");
}

/** Where a gRPC tunnel goes. */
export interface GrpcTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
}

/** Settings of a gRPC tunnel dial. */
export interface GrpcDialOptions {
  /** Largest message accepted from the router, in bytes. */
  readonly maxReceiveBytes?: number;
  /** Channel credentials; default: plaintext, or TLS against `trustedCas` when `tls`. */
  readonly credentials?: ChannelCredentials;
  /** PEM roots for TLS; default Node's bundled roots (see `trustedRoots`). */
  readonly trustedCas?: string;
}

/** Largest router message a miner accepts unless told otherwise (a router sends small frames; this only bounds memory). */
export const DEFAULT_MAX_RECEIVE_BYTES = 16 * 1024 * 1024;

/** How long a normal close waits for the router to end the call before cancelling it. */
const NORMAL_CLOSE_GRACE_MS = 2000;

const RAW_CONNECT = {
  connect: {
    ...TunnelServiceService.connect,
    requestSerialize: (value: Uint8Array): Buffer =>
      Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
    responseDeserialize: (value: Buffer): Buffer => value,
  },
} as const;

const RawTunnelClient = makeGenericClientConstructor(RAW_CONNECT, "tensorclaw.v1.TunnelService");

/** Opens a tunnel stream to `target`. Failures to connect surface as the channel closing. */
export function dialGrpc(target: GrpcTarget, opts: GrpcDialOptions = {}): FrameChannel {
  const creds =
    opts.credentials ??
    (target.tls
      ? credentials.createSsl(Buffer.from(opts.trustedCas ?? trustedRoots()))
      : credentials.createInsecure());
  const host = target.host.includes(":") ? `[${target.host}]` : target.host;
  const client = new RawTunnelClient(`${host}:${target.port}`, creds, {
    "grpc.max_receive_message_length": opts.maxReceiveBytes ?? DEFAULT_MAX_RECEIVE_BYTES,
    "grpc.max_send_message_length": -1,
    // Each dial is one tunnel: never share (or silently re-dial) a connection.
    "grpc.use_local_subchannel_pool": 1,
    "grpc.enable_retries": 0,
  });
  const call = (
    client as unknown as { connect(md: Metadata): ClientDuplexStream<Uint8Array, Buffer> }
  ).connect(new Metadata());
  return new GrpcClientChannel(call, `${host}:${target.port}`, () => client.close());
}

class GrpcClientChannel extends BufferedFrameChannel {
  readonly transport = "grpc" as const;
  readonly #call: ClientDuplexStream<Uint8Array, Buffer>;
  readonly #dispose: () => void;
  #localClose: { kind: ChannelCloseKind; reason: string } | undefined;

  constructor(call: ClientDuplexStream<Uint8Array, Buffer>, peer: string, dispose: () => void) {
    super(peer);
    this.#call = call;
    this.#dispose = dispose;
    call.on("data", (b: Buffer) => this.deliver(b));
    call.on("drain", () => this.drained());
    // 'error' repeats what 'status' says; listening keeps it from being thrown.
    call.on("error", (_e: ServiceError) => {});
    call.on("status", (s: StatusObject) => this.#ended(s));
  }

  send(message: Uint8Array): boolean {
    if (this.closed) return false;
    return this.#call.write(message);
  }

  /** Ends the call; the channel finishes when its status arrives, reporting this kind and reason. */
  protected closeTransport(kind: ChannelCloseKind, reason: string): void {
    this.#localClose = { kind, reason };
    if (kind === "normal") {
      // Half-close so the last frames still leave; the router ends the call
      // once it has read them. Cancelling at once could drop them in flight.
      this.#call.end();
      const timer = setTimeout(() => this.#call.cancel(), NORMAL_CLOSE_GRACE_MS);
      timer.unref();
      this.#call.once("status", () => clearTimeout(timer));
      return;
    }
    // A client cannot send a status: cancelling is how it hangs up.
    this.#call.cancel();
  }

  #ended(s: StatusObject): void {
    if (this.finished) return;
    const local = this.#localClose;
    const info: ChannelClosed =
      local !== undefined
        ? { kind: local.kind, reason: local.reason, remote: false }
        : {
            kind: s.code === GrpcStatus.CANCELLED ? "going_away" : closeKindFromGrpc(s.code),
            reason: s.details,
            remote: true,
          };
    this.#dispose();
    this.finish(info);
  }
}
