import { createServer, type Server as HttpServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import type { Hotkey } from "../../common/identity.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { ModelOffer } from "../../gen/tensorclaw/v1/tunnel.js";
import { addTunnelService, tunnelGrpcServerOptions } from "../../router/tunnel/grpc.js";
import { TunnelHub } from "../../router/tunnel/hub.js";
import type { TunnelHubOptions } from "../../router/tunnel/options.js";
import type { InferenceCall, TunnelEvent } from "../../router/tunnel/types.js";
import { attachTunnelWs, type TunnelWsEndpoint } from "../../router/tunnel/ws.js";
import { type RawTransport, RawTunnelClient, type TunnelEndpoints } from "./raw-tunnel-client.js";
import { FakeMiner, type FakeMinerOptions } from "./tunnel-fake-miner.js";

/** A hub served over real gRPC and WebSocket servers on port 0. */
export interface HubHarness {
  readonly hub: TunnelHub;
  readonly endpoints: TunnelEndpoints;
  /** Closes every tunnel and both servers. */
  close(): Promise<void>;
}

/** Starts a TunnelHub behind a gRPC server and an HTTP server (WS at /v1/tunnel), both on 127.0.0.1:0. */
export async function startHub(opts: Partial<TunnelHubOptions> = {}): Promise<HubHarness> {
  const hub = new TunnelHub({ routerId: "router-test", ...opts });
  const grpc = new GrpcServer(tunnelGrpcServerOptions({ maxMessageBytes: hub.timings.maxMessageBytes }));
  addTunnelService(grpc, hub);
  const grpcPort = await new Promise<number>((resolve, reject) => {
    grpc.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, port) =>
      err === null ? resolve(port) : reject(err),
    );
  });
  const http: HttpServer = createServer((_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  const ws: TunnelWsEndpoint = attachTunnelWs(http, hub, { maxMessageBytes: hub.timings.maxMessageBytes });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const httpPort = (http.address() as AddressInfo).port;
  return {
    hub,
    endpoints: { grpc: `127.0.0.1:${grpcPort}`, ws: `ws://127.0.0.1:${httpPort}/v1/tunnel` },
    close: async () => {
      hub.close("test over");
      ws.close();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
      grpc.forceShutdown();
    },
  };
}

/** A connected, accepted raw miner with a FakeMiner serving its requests. */
export interface ConnectedMiner {
  readonly client: RawTunnelClient;
  readonly miner: FakeMiner;
  readonly sessionId: string;
}

/** Opens a tunnel, completes the handshake with `key` and starts a FakeMiner on it. */
export async function connectMiner(
  h: HubHarness,
  transport: RawTransport,
  key: Hotkey,
  models: readonly ModelOffer[] = [{ id: "m1", maxConcurrency: 4, contextLength: 8192, kinds: [] }],
  opts: FakeMinerOptions = {},
): Promise<ConnectedMiner> {
  const client = await RawTunnelClient.open(transport, h.endpoints);
  const verdict = await client.handshake(key, { models });
  if (verdict.accept === undefined) throw new Error(`handshake refused: ${verdict.reject?.message}`);
  const miner = new FakeMiner(client, opts);
  return { client, miner, sessionId: verdict.accept.sessionId };
}

/** Reads a call's events to the end. */
export async function collect(call: InferenceCall): Promise<TunnelEvent[]> {
  const out: TunnelEvent[] = [];
  for await (const e of call.events) out.push(e);
  return out;
}

/** A one-message chat request. */
export function chat(text = "hi"): ChatRequest {
  return ChatRequest.fromPartial({ messages: [{ role: "user", content: text }], maxTokens: 16 });
}
