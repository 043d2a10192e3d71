/**
 * A real router tunnel endpoint for miner tests: a TunnelHub behind a gRPC
 * server and an HTTP server (WebSocket at /v1/tunnel), both on 127.0.0.1,
 * that can be crashed, drained and brought back on the same ports — what a
 * miner sees when its router restarts.
 */
import { createServer, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import { addTunnelService, tunnelGrpcServerOptions } from "../../router/tunnel/grpc.js";
import { TunnelHub } from "../../router/tunnel/hub.js";
import type { TunnelHubOptions } from "../../router/tunnel/options.js";
import type { SessionView } from "../../router/tunnel/types.js";
import { attachTunnelWs, type TunnelWsEndpoint } from "../../router/tunnel/ws.js";

/** A restartable router endpoint. */
export interface MinerTestRouter {
  /** The current hub (a new one after each restart). */
  readonly hub: TunnelHub;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** `grpc://127.0.0.1:<grpcPort>` (`grpcs://localhost:…` with TLS). */
  readonly grpcUrl: string;
  /** `ws://127.0.0.1:<httpPort>/v1/tunnel` (`wss://localhost:…` with TLS). */
  readonly wsUrl: string;
  /** Hard stop: tunnels cut, servers gone (a crash). */
  crash(): Promise<void>;
  /** Graceful stop: Drain to every miner, in-flight work finishes, then servers close. */
  drainAndStop(): Promise<void>;
  /** Starts a fresh hub on the same ports. */
  start(): Promise<void>;
  /** Stops for good. */
  close(): Promise<void>;
}

/** PEM certificate and key to serve both ports over TLS. */
export interface RouterTls {
  readonly cert: string;
  readonly key: string;
}

/** Starts a router endpoint on free ports (TLS on both when `tls` is given). */
export async function startMinerTestRouter(
  opts: Partial<TunnelHubOptions> = {},
  tls?: RouterTls,
): Promise<MinerTestRouter> {
  let hub!: TunnelHub;
  let grpc: GrpcServer | undefined;
  let http: HttpServer | undefined;
  let ws: TunnelWsEndpoint | undefined;
  let grpcPort = 0;
  let httpPort = 0;

  const start = async () => {
    hub = new TunnelHub({ routerId: "router-miner-test", ...opts });
    const g = new GrpcServer(tunnelGrpcServerOptions({ maxMessageBytes: hub.timings.maxMessageBytes }));
    addTunnelService(g, hub);
    grpcPort = await new Promise<number>((resolve, reject) => {
      const creds =
        tls === undefined
          ? ServerCredentials.createInsecure()
          : ServerCredentials.createSsl(null, [
              { cert_chain: Buffer.from(tls.cert), private_key: Buffer.from(tls.key) },
            ]);
      g.bindAsync(`127.0.0.1:${grpcPort}`, creds, (err, port) =>
        err === null ? resolve(port) : reject(err),
      );
    });
    grpc = g;
    const notFound = (_req: unknown, res: { statusCode: number; end(): void }) => {
      res.statusCode = 404;
      res.end();
    };
    // An https.Server is an http.Server as far as upgrades go.
    const h = (tls === undefined ? createServer(notFound) : createHttpsServer(tls, notFound)) as HttpServer;
    ws = attachTunnelWs(h, hub, { maxMessageBytes: hub.timings.maxMessageBytes });
    await new Promise<void>((resolve, reject) => {
      h.once("error", reject);
      h.listen(httpPort, "127.0.0.1", () => resolve());
    });
    httpPort = (h.address() as AddressInfo).port;
    http = h;
  };

  const stopServers = async () => {
    ws?.close();
    const h = http;
    http = undefined;
    if (h !== undefined) {
      h.closeAllConnections();
      await new Promise<void>((resolve) => h.close(() => resolve()));
    }
    grpc?.forceShutdown();
    grpc = undefined;
  };

  await start();
  return {
    get hub() {
      return hub;
    },
    get grpcPort() {
      return grpcPort;
    },
    get httpPort() {
      return httpPort;
    },
    get grpcUrl() {
      return tls === undefined ? `grpc://127.0.0.1:${grpcPort}` : `grpcs://localhost:${grpcPort}`;
    },
    get wsUrl() {
      return tls === undefined
        ? `ws://127.0.0.1:${httpPort}/v1/tunnel`
        : `wss://localhost:${httpPort}/v1/tunnel`;
    },
    crash: async () => {
      hub.close("router crashed");
      await stopServers();
    },
    drainAndStop: async () => {
      await hub.drain("router restarting");
      await stopServers();
    },
    start,
    close: async () => {
      hub.close("test over");
      await stopServers();
    },
  };
}

/** The hub's view of a live session (throws when it is not live). */
export function sessionOf(hub: TunnelHub, sessionId: string): SessionView {
  const s = hub.sessions().find((v) => v.sessionId === sessionId);
  if (s === undefined) throw new Error(`session ${sessionId} is not live on the hub`);
  return s;
}
