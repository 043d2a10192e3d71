/**
 * The tunnel's message-size default (tunnel.proto: 4 MiB unless the router
 * says otherwise in Accept), on its own so that configuration can use it
 * without loading the transports (and grpc-js) behind common/frame-channel.ts.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024;
