import { connect, type Socket } from "node:net";
import { expect } from "chai";
import { type RouterUnderTest, startRouter } from "../support/api-harness.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";

/** A raw connection from `from` (any 127.0.0.0/8 address is this machine on Linux). */
async function open(
  port: number,
  from: string,
): Promise<{ socket: Socket; data: () => string; closed: Promise<void> }> {
  const socket = connect({ port, host: "127.0.0.1", localAddress: from });
  let data = "";
  socket.on("data", (d: Buffer) => {
    data += d.toString();
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return { socket, data: () => data, closed };
}

/** Waits until `cond` holds (socket events arrive on the loop). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** A keep-alive connection that made one GET /healthz and now sits idle. */
async function idle(port: number, from: string) {
  const c = await open(port, from);
  c.socket.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
  await until(() => c.data().includes('{"status":"ok"}'), "the health answer");
  return c;
}

/** A connection whose request is in progress (the body is still being sent). */
async function busy(port: number, from: string) {
  const c = await open(port, from);
  c.socket.write(
    "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
  );
  return c;
}

describe("api connection limits", () => {
  let router: RouterUnderTest | undefined;

  afterEach(async () => {
    await router?.close();
    router = undefined;
  });

  it("an address at its cap loses its longest-idle keep-alive connection to its new one", async () => {
    router = await startRouter({ connectionLimits: { perAddress: 3, total: 100 } });
    const port = router.api.port;
    const first = await idle(port, "127.0.0.2");
    const second = await idle(port, "127.0.0.2");
    await idle(port, "127.0.0.2");
    const fourth = await idle(port, "127.0.0.2");
    await first.closed;
    expect(fourth.data()).to.match(/^HTTP\/1.1 200/);
    expect(second.socket.destroyed).to.equal(false);
    expect(router.api.connections.open).to.equal(3);
  });

  it("an address whose connections are all busy gets no more, while every other address is served", async () => {
    router = await startRouter({ connectionLimits: { perAddress: 2, total: 100 } });
    const port = router.api.port;
    const r = router;
    await busy(port, "127.0.0.2");
    await busy(port, "127.0.0.2");
    await until(() => r.api.connections.busy === 2, "two requests in progress");
    const third = await open(port, "127.0.0.2");
    third.socket.write("GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n");
    await third.closed;
    expect(third.data()).to.equal("");
    const other = await idle(port, "127.0.0.3");
    expect(other.data()).to.match(/^HTTP\/1.1 200/);
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).to.equal(200);
  });

  it("at the total cap the longest-idle connection of any address makes room", async () => {
    router = await startRouter({ connectionLimits: { perAddress: 100, total: 3 } });
    const port = router.api.port;
    const oldest = await idle(port, "127.0.0.2");
    await idle(port, "127.0.0.2");
    await idle(port, "127.0.0.4");
    const newcomer = await idle(port, "127.0.0.3");
    await oldest.closed;
    expect(newcomer.data()).to.match(/^HTTP\/1.1 200/);
    expect(router.api.connections.open).to.equal(3);
  });

  it("WebSocket tunnels on the API port are not HTTP connections: they neither count nor get closed for room", async () => {
    router = await startRouter({ connectionLimits: { perAddress: 1, total: 1 } });
    const r = router;
    const endpoints = { grpc: router.grpcUrl, ws: router.wsUrl };
    for (let i = 0; i < 2; i++) {
      const c = await RawTunnelClient.open("ws", endpoints);
      const verdict = await c.handshake(await throwawayHotkey());
      expect(verdict.accept).to.not.equal(undefined);
    }
    await until(() => r.api.connections.open === 0, "the upgraded sockets to leave the count");
    const h = await idle(router.api.port, "127.0.0.1");
    expect(h.data()).to.match(/^HTTP\/1.1 200/);
    expect(router.hub.sessions()).to.have.length(2);
  });
});
