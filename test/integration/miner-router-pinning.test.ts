// A relay between a miner and a router must get nothing: the relay opens
// its own tunnel to a real router, passes that router's Challenge to the
// miner and would pass the miner's Hello back, which the real router would
// accept as a session under the miner's hotkey. The miner signs a Hello only
// for the router id its --router URL pins (?id=) or that it pinned at this
// address on first contact, so it sends nothing and the real router never
// sees the miner. The relay is a plain WebSocket server speaking the tunnel's
// bytes; the router is a real TunnelHub.
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import type { Hotkey } from "../../common/identity.js";
import { ConnectRequest, ConnectResponse } from "../../gen/tensorclaw/v1/tunnel.js";
import { Miner } from "../../miner/miner.js";
import {
  FileRouterPins,
  MemoryRouterPins,
  ROUTER_PINS_FILE,
  type RouterPins,
} from "../../miner/tunnel/router-pins.js";
import { throwawayHotkey } from "../support/keys.js";
import { memoryLogger } from "../support/memory-logger.js";
import { type MinerTestRouter, startMinerTestRouter } from "../support/miner-router.js";

const REAL_ID = "router-real";
const RELAY_ID = "router-relay";

/** One miner connection the relay handled. */
interface Relayed {
  /** The path (and query) the miner asked for. */
  readonly path: string;
  /** Every message the miner sent, as frame kinds. */
  readonly fromMiner: string[];
  /** Every message the real router sent on the relay's own tunnel, as frame kinds. */
  readonly fromRouter: string[];
  readonly closed: Promise<{ code: number; reason: string }>;
}

/**
 * A relay at ws://127.0.0.1:<port>/v1/tunnel. In "own" mode it is a router
 * of its own for one connection (challenges as RELAY_ID, refuses the
 * hello), then turns to "forward", where it pipes each miner connection to
 * the real router, both ways.
 */
async function startRelay(real: MinerTestRouter) {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", perMessageDeflate: false });
  await once(wss, "listening");
  const state = { mode: "forward" as "own" | "forward" };
  const seen: Relayed[] = [];
  const waiters: ((r: Relayed) => void)[] = [];
  const upstreams = new Set<WebSocket>();
  const kinds = (data: RawData, decode: (b: Uint8Array) => { frames: { kind?: { $case: string } }[] }) =>
    decode(new Uint8Array(data as Buffer)).frames.map((f) => f.kind?.$case ?? "?");
  wss.on("connection", (miner, req) => {
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      miner.once("close", (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    const r: Relayed = { path: req.url ?? "", fromMiner: [], fromRouter: [], closed };
    seen.push(r);
    if (state.mode === "own") {
      state.mode = "forward";
      miner.on("message", (data) => {
        r.fromMiner.push(...kinds(data, (b) => ConnectRequest.decode(b)));
        miner.close(1008, "not today");
      });
      miner.send(
        ConnectResponse.encode({
          frames: [
            {
              kind: {
                $case: "challenge",
                value: {
                  nonce: Buffer.alloc(32, 9),
                  routerId: RELAY_ID,
                  protocolVersion: 1,
                  helloTimeoutMs: 5000,
                  serverTimeMs: BigInt(Date.now()),
                },
              },
            },
          ],
        }).finish(),
      );
    } else {
      const up = new WebSocket(real.wsUrl, { perMessageDeflate: false });
      upstreams.add(up);
      up.on("message", (data) => {
        r.fromRouter.push(...kinds(data, (b) => ConnectResponse.decode(b)));
        if (miner.readyState === WebSocket.OPEN) miner.send(data);
      });
      miner.on("message", (data) => {
        r.fromMiner.push(...kinds(data, (b) => ConnectRequest.decode(b)));
        if (up.readyState === WebSocket.OPEN) up.send(data);
      });
      miner.on("close", () => up.close());
      up.on("close", () => miner.close());
      up.on("error", () => miner.terminate());
    }
    waiters.shift()?.(r);
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/v1/tunnel`,
    state,
    seen,
    /** The next miner connection (or the one already waiting). */
    next(after: number): Promise<Relayed> {
      const r = seen[after];
      return r !== undefined ? Promise.resolve(r) : new Promise((resolve) => waiters.push(resolve));
    },
    close: async () => {
      for (const u of upstreams) u.terminate();
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

describe("a miner signs hellos only for the router it pinned (relay test)", () => {
  let real: MinerTestRouter;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let hotkey: Hotkey;
  let miner: Miner | undefined;
  let dir: string;

  beforeEach(async () => {
    real = await startMinerTestRouter({ routerId: REAL_ID });
    relay = await startRelay(real);
    hotkey = await throwawayHotkey();
    dir = await mkdtemp(join(tmpdir(), "tc-pins-"));
  });
  afterEach(async () => {
    await miner?.stop();
    miner = undefined;
    await relay.close();
    await real.close();
    await rm(dir, { recursive: true, force: true });
  });

  function startMiner(url: string, routerPins: RouterPins) {
    const log = memoryLogger();
    miner = new Miner(
      {
        router: [url],
        backend: "demo",
        backendKey: undefined,
        models: [],
        maxConcurrency: 2,
        contextLength: 0,
        transport: "ws",
        healthIntervalMs: 60_000,
        connectTimeoutMs: 5_000,
      },
      { hotkey, routerPins, logger: log.logger, backoff: { baseMs: 20, capMs: 50, stableAfterMs: 60_000 } },
    );
    return { miner, log, started: miner.start() };
  }

  const sessionsOfMiner = () => real.hub.sessions().filter((s) => s.hotkey === hotkey.address);

  it("the relay works as a relay: a miner that means to reach the real router gets a session through it", async () => {
    // Without this, the refusals below could come from a broken relay rather than the miner.
    const m = startMiner(`${relay.url}?id=${REAL_ID}`, new MemoryRouterPins());
    await m.started;
    await m.miner.tunnels[0]?.waitFor((s) => s.state === "connected");
    const r = await relay.next(0);
    expect(r.fromMiner).to.deep.equal(["hello"]);
    expect(r.fromRouter.slice(0, 2)).to.deep.equal(["challenge", "accept"]);
    expect(sessionsOfMiner()).to.have.length(1);
  });

  it("sends no hello when the URL pins the relay's own id (?id=), and the real router never sees the miner", async () => {
    const m = startMiner(`${relay.url}?id=${RELAY_ID}`, new MemoryRouterPins());
    await m.started;
    const r = await relay.next(0);
    const closed = await r.closed;
    expect(r.path, "the ?id= query is not sent to the server").to.equal("/v1/tunnel");
    expect(r.fromRouter).to.deep.equal(["challenge"]);
    expect(r.fromMiner, "the miner sent nothing for the real router's challenge").to.deep.equal([]);
    expect(closed.code).to.equal(1008);
    expect(sessionsOfMiner()).to.deep.equal([]);
    await m.miner.tunnels[0]?.waitFor((s) => s.state === "backoff");
    const errors = m.log.lines().filter((l) => l.level >= 50);
    expect(errors.map((l) => l.msg).join("\n")).to.include(
      `names itself "${REAL_ID}", but --router pins ?id=${RELAY_ID}: no hello signed`,
    );
    // It keeps refusing on every retry, not just once.
    const again = await relay.next(1);
    await again.closed;
    expect(again.fromMiner).to.deep.equal([]);
    expect(sessionsOfMiner()).to.deep.equal([]);
  });

  it("pins the relay's id on first contact (in the pin file) and then refuses the real router's challenge through it", async () => {
    relay.state.mode = "own";
    const m = startMiner(relay.url, new FileRouterPins(dir));
    await m.started;
    const first = await relay.next(0);
    await first.closed;
    expect(first.fromMiner, "first contact: the miner answers the relay as the router it is").to.deep.equal([
      "hello",
    ]);
    const port = new URL(relay.url).port;
    const file = JSON.parse(await readFile(join(dir, ROUTER_PINS_FILE), "utf8"));
    expect(file).to.deep.equal({ version: 1, pins: { [`127.0.0.1:${port}`]: RELAY_ID } });

    // Now the relay has turned around and passes on the real router's challenge.
    const second = await relay.next(1);
    await second.closed;
    expect(second.fromRouter).to.deep.equal(["challenge"]);
    expect(second.fromMiner).to.deep.equal([]);
    expect(sessionsOfMiner()).to.deep.equal([]);
    await m.miner.tunnels[0]?.waitFor((s) => s.state === "backoff");
    const text = m.log
      .lines()
      .filter((l) => l.level >= 50)
      .map((l) => l.msg)
      .join("\n");
    expect(text).to.include(`ROUTER ID CHANGED at 127.0.0.1:${port}: pinned "${RELAY_ID}"`);
    expect(text).to.include(join(dir, ROUTER_PINS_FILE));

    // A restarted miner reads the pin back and refuses just the same.
    await m.miner.stop();
    const before = relay.seen.length;
    const again = startMiner(relay.url, new FileRouterPins(dir));
    await again.started;
    // Its first attempt has ended once it is in backoff (start() left it connecting).
    await again.miner.tunnels[0]?.waitFor((st) => st.state === "backoff");
    expect(again.log.lines().some((l) => l.level >= 50 && l.msg.includes("ROUTER ID CHANGED"))).to.equal(
      true,
    );
    const later = relay.seen.slice(before);
    expect(later.some((r) => r.fromRouter[0] === "challenge")).to.equal(true);
    expect(later.flatMap((r) => r.fromMiner)).to.deep.equal([]);
    expect(sessionsOfMiner()).to.deep.equal([]);
  });
});
