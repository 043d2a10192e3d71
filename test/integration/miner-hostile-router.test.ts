// The miner treats its router as a network peer like any other: garbage,
// frames out of order, silence and refusals each end that tunnel with a
// precise close and lead to a paced retry, never a crash. The "router" here
// is a raw WebSocket server speaking (or breaking) the tunnel protocol. The
// miner runs on a fake clock: its deadlines, silence watch and backoff pass
// when the test says so, not after real waits.
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { WebSocket, WebSocketServer } from "ws";
import {
  ConnectRequest,
  ConnectResponse,
  RejectReason,
  type RouterFrame,
} from "../../gen/tensorclaw/v1/tunnel.js";
import { Miner } from "../../miner/miner.js";
import { MemoryRouterPins } from "../../miner/tunnel/router-pins.js";
import { FakeClock } from "../support/fake-clock.js";
import { throwawayHotkey } from "../support/keys.js";

interface Attempt {
  readonly ws: WebSocket;
  readonly closed: Promise<{ code: number; reason: string }>;
}

/** A WebSocket server that hands every tunnel attempt to the test, in order. */
async function rawRouter(): Promise<{ url: string; next(): Promise<Attempt>; close(): Promise<void> }> {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: false });
  await once(wss, "listening");
  const queue: Attempt[] = [];
  const waiters: ((a: Attempt) => void)[] = [];
  wss.on("connection", (ws) => {
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    const a = { ws, closed };
    const w = waiters.shift();
    if (w !== undefined) w(a);
    else queue.push(a);
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/v1/tunnel`,
    next: () => {
      const a = queue.shift();
      return a !== undefined ? Promise.resolve(a) : new Promise((resolve) => waiters.push(resolve));
    },
    close: async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    },
  };
}

function challenge(): Uint8Array {
  return ConnectResponse.encode({
    frames: [
      {
        kind: {
          $case: "challenge",
          value: {
            nonce: Buffer.alloc(32, 7),
            routerId: "hostile",
            protocolVersion: 1,
            helloTimeoutMs: 5000,
            serverTimeMs: BigInt(Date.now()),
          },
        },
      },
    ],
  }).finish();
}

function routerFrame(kind: RouterFrame["kind"]): Uint8Array {
  return ConnectResponse.encode({ frames: [{ kind }] }).finish();
}

/** The miner's longest backoff here (backoff.capMs). */
const BACKOFF_CAP_MS = 100;
/** The miner's handshake deadline here (connectTimeoutMs). */
const CONNECT_TIMEOUT_MS = 300;

describe("miner against a hostile router", () => {
  let router: Awaited<ReturnType<typeof rawRouter>>;
  let miner: Miner;
  let clock: FakeClock;

  /** The miner's tunnel state (one router). */
  const state = () => miner.tunnels[0]?.status.state;

  /** Lets the miner's backoff after a failed tunnel run out; resolves with its next attempt. */
  async function retried(): Promise<Attempt> {
    await miner.tunnels[0]?.waitFor((s) => s.state === "backoff");
    await clock.advance(BACKOFF_CAP_MS);
    return router.next();
  }

  beforeEach(async () => {
    router = await rawRouter();
    clock = new FakeClock(Date.now());
    miner = new Miner(
      {
        router: [router.url],
        backend: "demo",
        backendKey: undefined,
        models: [],
        maxConcurrency: 2,
        contextLength: 0,
        transport: "ws",
        healthIntervalMs: 60_000,
        connectTimeoutMs: CONNECT_TIMEOUT_MS,
      },
      {
        hotkey: await throwawayHotkey(),
        routerPins: new MemoryRouterPins(),
        backoff: { baseMs: 50, capMs: BACKOFF_CAP_MS, stableAfterMs: 60_000 },
        clock,
      },
    );
    await miner.start();
  });
  afterEach(async () => {
    await miner.stop();
    await router.close();
  });

  it("closes with 1007 on a message that does not decode, then retries", async () => {
    const first = await router.next();
    first.ws.send(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
    expect(await first.closed).to.deep.include({ code: 1007 });
    const second = await retried();
    expect(second.ws.readyState).to.equal(WebSocket.OPEN);
  });

  it("closes with 1007 on a text message and on a frame before the challenge", async () => {
    const first = await router.next();
    first.ws.send("hello?");
    expect((await first.closed).code).to.equal(1007);
    const second = await retried();
    second.ws.send(
      ConnectResponse.encode({
        frames: [
          {
            kind: {
              $case: "accept",
              value: { sessionId: "x", pingIntervalMs: 0, maxMissedPongs: 0, maxMessageBytes: 0 },
            },
          },
        ],
      }).finish(),
    );
    const closed = await second.closed;
    expect(closed.code).to.equal(1007);
    expect(closed.reason).to.match(/expected challenge/);
  });

  it("gives up on a router that never sends the challenge, with a timeout close", async () => {
    const first = await router.next();
    await clock.advance(CONNECT_TIMEOUT_MS - 1);
    expect(state(), "still waiting for the challenge").to.equal("connecting");
    await clock.advance(1);
    const closed = await first.closed;
    expect(closed.code).to.equal(1008);
    expect(closed.reason).to.match(/no challenge/);
    await retried();
  });

  it("answers the challenge with a signed hello and waits at least the Reject's retry hint", async () => {
    const first = await router.next();
    const hello = once(first.ws, "message");
    first.ws.send(challenge());
    const [data] = (await hello) as [Buffer];
    const frame = ConnectRequest.decode(data).frames[0]?.kind;
    expect(frame?.$case).to.equal("hello");
    if (frame?.$case !== "hello") return;
    expect(frame.value.signature).to.have.length(64);
    expect(frame.value.models.map((m) => m.id)).to.deep.equal(["tensorclaw-demo", "tensorclaw-demo-embed"]);
    first.ws.send(
      ConnectResponse.encode({
        frames: [
          {
            kind: {
              $case: "reject",
              value: {
                reason: RejectReason.REJECT_REASON_NOT_ADMITTED,
                message: "go away",
                retryAfterMs: 400,
              },
            },
          },
        ],
      }).finish(),
    );
    first.ws.close(1008, "rejected");
    await miner.tunnels[0]?.waitFor((s) => s.state === "backoff");
    // The backoff alone would retry within 100 ms; the hint says 400.
    await clock.advance(399);
    expect(state(), "retried before the hint").to.equal("backoff");
    await clock.advance(1);
    const second = await router.next();
    expect(second.ws.readyState).to.equal(WebSocket.OPEN);
  });

  it("drops a live tunnel whose router stops pinging (a black-holed path), then retries", async () => {
    const first = await router.next();
    const hello = once(first.ws, "message");
    first.ws.send(challenge());
    await hello;
    // Silence limit on the miner: ping interval x (missed pongs + 2) = 800 ms.
    first.ws.send(
      routerFrame({
        $case: "accept",
        value: { sessionId: "s", pingIntervalMs: 200, maxMissedPongs: 2, maxMessageBytes: 0 },
      }),
    );
    await miner.tunnels[0]?.waitFor((s) => s.state === "connected");
    // Pings every 100 ms keep the tunnel up well past the limit; each pong shows the ping was heard.
    for (let seq = 1; seq <= 15; seq++) {
      await clock.advance(100);
      expect(state(), `closed before ping ${seq}`).to.equal("connected");
      const answer = once(first.ws, "message");
      first.ws.send(routerFrame({ $case: "ping", value: { seq } }));
      const [data] = (await answer) as [Buffer];
      expect(ConnectRequest.decode(data).frames[0]?.kind).to.deep.equal({ $case: "pong", value: { seq } });
    }
    // Then silence: the miner gives up exactly at the limit after the last ping.
    await clock.advance(799);
    expect(state(), "gave up before the silence limit").to.equal("connected");
    await clock.advance(1);
    const closed = await first.closed;
    expect(closed.code).to.equal(1008);
    expect(closed.reason).to.match(/went silent/);
    await retried();
  });
});
