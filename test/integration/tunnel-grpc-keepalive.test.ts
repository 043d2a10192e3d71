import { once } from "node:events";
import { connect as http2Connect } from "node:http2";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { Server as GrpcServer, ServerCredentials } from "@grpc/grpc-js";
import { expect } from "chai";
import { addTunnelService, tunnelGrpcServerOptions } from "../../router/tunnel/grpc.js";
import { TunnelHub } from "../../router/tunnel/hub.js";

/**
 * A TCP relay between a client and the router that can go silent without
 * closing anything, like a NAT mapping that was dropped: bytes stop flowing
 * both ways and neither end is told.
 */
async function silentableRelay(targetPort: number) {
  const upstreams: Socket[] = [];
  let silent = false;
  const server: Server = createServer((client) => {
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    upstreams.push(upstream);
    client.on("data", (b) => {
      if (!silent) upstream.write(b);
    });
    upstream.on("data", (b) => {
      if (!silent) client.write(b);
    });
    client.on("error", () => {});
    upstream.on("error", () => {});
    upstream.on("close", () => client.destroy());
    client.on("close", () => upstream.destroy());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as { port: number }).port,
    goSilent: () => {
      silent = true;
    },
    /** Resolves when the router's side of the (first) relayed connection closes. */
    routerClosed: () => {
      const up = upstreams[0];
      if (up === undefined) throw new Error("nothing relayed yet");
      return up.destroyed ? Promise.resolve() : once(up, "close").then(() => undefined);
    },
    /** Whether the router's side of the (first) relayed connection is closed now. */
    routerClosedNow: () => upstreams[0]?.destroyed ?? false,
    close: () => {
      for (const u of upstreams) u.destroy();
      server.close();
    },
  };
}

describe("tunnel gRPC server: HTTP/2 keepalive", () => {
  async function startRouter(keepaliveTimeMs: number) {
    const hub = new TunnelHub({ routerId: "keepalive-test" });
    const grpc = new GrpcServer(
      tunnelGrpcServerOptions({
        maxMessageBytes: hub.timings.maxMessageBytes,
        keepaliveTimeMs,
        keepaliveTimeoutMs: 200,
      }),
    );
    addTunnelService(grpc, hub);
    const port = await new Promise<number>((resolve, reject) =>
      grpc.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) =>
        e === null ? resolve(p) : reject(e),
      ),
    );
    return {
      port,
      close: () => {
        hub.close("test over");
        grpc.forceShutdown();
      },
    };
  }

  async function connectThrough(relayPort: number) {
    const session = http2Connect(`http://127.0.0.1:${relayPort}`);
    session.on("error", () => {});
    await once(session, "connect");
    return session;
  }

  it("keeps a connection whose peer answers pings, and drops one that went silent", async () => {
    const router = await startRouter(200);
    const relay = await silentableRelay(router.port);
    const session = await connectThrough(relay.port);
    try {
      // Several keepalive periods pass: the client's HTTP/2 stack answers each ping.
      for (let i = 0; i < 3; i++) await once(session, "ping");
      expect(session.closed || session.destroyed).to.equal(false);
      expect(relay.routerClosedNow()).to.equal(false);
      // The path dies silently: the router notices within keepalive time + timeout, not never.
      const t0 = Date.now();
      relay.goSilent();
      await relay.routerClosed();
      expect(Date.now() - t0).to.be.lessThan(2000);
    } finally {
      session.destroy();
      relay.close();
      router.close();
    }
  });

  it("without a short keepalive the same silent path stays open (so the drop above is keepalive's doing)", async () => {
    // Two routers side by side, paths silenced at once: when the 200 ms keepalive has
    // dropped its path, the one with a 60 s keepalive still holds its own.
    const routers = [await startRouter(200), await startRouter(60_000)];
    const relays = await Promise.all(routers.map((r) => silentableRelay(r.port)));
    const sessions = await Promise.all(relays.map((r) => connectThrough(r.port)));
    const [short, long] = relays;
    if (short === undefined || long === undefined) throw new Error("two relays expected");
    try {
      short.goSilent();
      long.goSilent();
      await short.routerClosed();
      expect(long.routerClosedNow()).to.equal(false);
    } finally {
      for (const s of sessions) s.destroy();
      for (const r of relays) r.close();
      for (const r of routers) r.close();
    }
  });
});
