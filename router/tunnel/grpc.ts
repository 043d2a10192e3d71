import type { Server, ServerDuplexStream, ServerOptions, ServiceDefinition } from "@grpc/grpc-js";
import { type ChannelCloseKind, type FrameChannel, GRPC_CLOSE_STATUS } from "../../common/frame-channel.js";
import { BufferedFrameChannel } from "../../common/frame-channel-base.js";
import { TunnelServiceService } from "../../gen/tensorclaw/v1/tunnel.js";
import { DEFAULT_GRPC_KEEPALIVE_TIME_MS, DEFAULT_GRPC_KEEPALIVE_TIMEOUT_MS } from "./options.js";

/** Who takes the channels the gRPC service opens (the TunnelHub). */
export interface ChannelAcceptor {
  accept(channel: FrameChannel): void;
}

/**
 * TunnelService with pass-through (de)serializers: the session decodes
 * requests itself so a message that does not decode closes the tunnel with
 * INVALID_ARGUMENT (grpc-js would answer INTERNAL), and the batcher hands
 * over ready-made envelopes. Same path and wire format as the generated one.
 */
export const RAW_TUNNEL_SERVICE = {
  connect: {
    ...TunnelServiceService.connect,
    requestDeserialize: (value: Buffer): Buffer => value,
    responseSerialize: (value: Uint8Array): Buffer =>
      Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength),
  },
} as const satisfies ServiceDefinition;

/** Adds `TunnelService.Connect` to a grpc.Server; each stream becomes a channel handed to `hub`. */
export function addTunnelService(server: Server, hub: ChannelAcceptor): void {
  server.addService(RAW_TUNNEL_SERVICE as unknown as ServiceDefinition, {
    connect: (call: ServerDuplexStream<Buffer, Uint8Array>) => {
      hub.accept(new GrpcServerChannel(call));
    },
  });
}

/** Settings for the tunnel's gRPC server. */
export interface TunnelGrpcServerSettings {
  /** Largest accepted message (the hub's `maxMessageBytes`); larger ones end the stream with RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;
  /** HTTP/2 keepalive ping interval (default 30 s). */
  readonly keepaliveTimeMs?: number;
  /** How long a keepalive ping may go unanswered before the connection is dropped (default 10 s). */
  readonly keepaliveTimeoutMs?: number;
}

/**
 * The grpc.Server options a router serving tunnels should use: HTTP/2
 * keepalive so dead NAT paths are found even between application pings,
 * and the message size limit enforced before a message is buffered.
 */
export function tunnelGrpcServerOptions(s: TunnelGrpcServerSettings): ServerOptions {
  return {
    "grpc.max_receive_message_length": s.maxMessageBytes,
    "grpc.max_send_message_length": s.maxMessageBytes,
    "grpc.keepalive_time_ms": s.keepaliveTimeMs ?? DEFAULT_GRPC_KEEPALIVE_TIME_MS,
    "grpc.keepalive_timeout_ms": s.keepaliveTimeoutMs ?? DEFAULT_GRPC_KEEPALIVE_TIMEOUT_MS,
    "grpc.keepalive_permit_without_calls": 1,
  };
}

/** A FrameChannel over a server-side gRPC bidi stream. */
export class GrpcServerChannel extends BufferedFrameChannel {
  readonly transport = "grpc" as const;
  readonly #call: ServerDuplexStream<Buffer, Uint8Array>;

  constructor(call: ServerDuplexStream<Buffer, Uint8Array>) {
    super(safePeer(call));
    this.#call = call;
    call.on("data", (bytes: Buffer) => this.deliver(bytes));
    call.on("drain", () => this.drained());
    // The miner half-closed: it will send nothing more, so the tunnel is over.
    call.on("end", () => {
      this.finish({ kind: "normal", reason: "the miner ended the stream", remote: true });
      call.end();
    });
    call.on("cancelled", () =>
      this.finish({
        kind: "going_away",
        reason: "the stream was cancelled or the connection dropped",
        remote: true,
      }),
    );
    call.on("error", (err: Error) => {
      // Our own close emits 'error' to set the status; anything else is the transport failing.
      this.finish({ kind: "going_away", reason: `stream error: ${err.message}`, remote: true });
    });
    call.on("close", () => this.finish({ kind: "going_away", reason: "the stream closed", remote: true }));
  }

  send(message: Uint8Array): boolean {
    if (this.closed) return false;
    return this.#call.write(message);
  }

  protected closeTransport(kind: ChannelCloseKind, reason: string): void {
    this.finish({ kind, reason, remote: false });
    const code = GRPC_CLOSE_STATUS[kind];
    if (kind === "normal") this.#call.end();
    // grpc-js turns an 'error' on a server stream into the call's final status (after queued writes).
    else this.#call.emit("error", Object.assign(new Error(reason), { code, details: reason }));
  }
}

function safePeer(call: ServerDuplexStream<Buffer, Uint8Array>): string {
  try {
    return call.getPeer();
  } catch {
    return "unknown";
  }
}
