// TLS channel binding of the tunnel hello (tunnel.proto, Hello.channel_binding),
// over real wss with a self-signed certificate. A relay that terminates TLS
// itself and opens its own wss tunnel to the real router can show the real
// router's id (so router id pinning passes, ?id= included) and forward the
// Challenge and the Hello both ways: the Hello then carries the exporter
// value of the miner-to-relay connection, which is not the relay-to-router
// one, and the real router refuses it. The relay even holds the router's
// own certificate here, so nothing but the binding can tell.

import { once } from "node:events";
import { mkdtemp, rm } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TlsOptions } from "node:tls";
import { expect } from "chai";
import { type RawData, WebSocket, WebSocketServer } from "ws";
import { CHANNEL_BINDING_BYTES, tlsExporterBinding } from "../../common/channel-binding.js";
import type { Hotkey } from "../../common/identity.js";
import { signHello } from "../../common/signing.js";
import {
  type Challenge,
  ConnectRequest,
  ConnectResponse,
  type Hello,
  RejectReason,
  type RouterFrame,
} from "../../gen/tensorclaw/v1/tunnel.js";
import { Miner } from "../../miner/miner.js";
import { MemoryRouterPins } from "../../miner/tunnel/router-pins.js";
import { throwawayHotkey } from "../support/keys.js";
import { memoryLogger } from "../support/memory-logger.js";
import { type MinerTestRouter, type RouterTls, startMinerTestRouter } from "../support/miner-router.js";
import { type RawTransport, RawTunnelClient } from "../support/raw-tunnel-client.js";
import { selfSignedLocalhost } from "../support/self-signed.js";

const REAL_ID = "router-real";

type RouterKind = NonNullable<RouterFrame["kind"]>;

function routerKinds(data: RawData): RouterKind[] {
  return ConnectResponse.decode(new Uint8Array(data as Buffer)).frames.flatMap((f) =>
    f.kind === undefined ? [] : [f.kind],
  );
}

/** One miner connection the relay handled. */
interface Relayed {
  /** Hellos the miner sent through the relay. */
  readonly hellos: Hello[];
  /** Every frame the real router sent on the relay's own tunnel. */
  readonly fromRouter: RouterKind[];
  /** The real router's answer to the forwarded hello (its Accept or Reject). */
  readonly verdict: Promise<RouterKind>;
}

/**
 * A TLS-terminating relay at wss://localhost:<port>/v1/tunnel with the real
 * router's certificate: each miner connection becomes a wss tunnel of its own
 * to the real router, and every message is piped both ways unchanged.
 */
async function startTlsRelay(real: MinerTestRouter, tls: RouterTls, serverTls: TlsOptions = {}) {
  let handshakes = 0;
  const https: HttpsServer = createHttpsServer({ ...tls, ...serverTls }, (_req, res) => {
    res.statusCode = 404;
    res.end();
  });
  const wss = new WebSocketServer({ server: https, perMessageDeflate: false });
  https.on("secureConnection", () => handshakes++);
  https.listen(0, "127.0.0.1");
  await once(https, "listening");
  const seen: Relayed[] = [];
  const waiters: ((r: Relayed) => void)[] = [];
  const upstreams = new Set<WebSocket>();
  wss.on("connection", (miner) => {
    const up = new WebSocket(real.wsUrl, { perMessageDeflate: false, ca: tls.cert });
    upstreams.add(up);
    let answered: (k: RouterKind) => void = () => {};
    const r: Relayed = {
      hellos: [],
      fromRouter: [],
      verdict: new Promise((resolve) => (answered = resolve)),
    };
    seen.push(r);
    const early: RawData[] = [];
    up.on("open", () => {
      for (const m of early.splice(0)) up.send(m);
    });
    up.on("message", (data) => {
      for (const k of routerKinds(data)) {
        r.fromRouter.push(k);
        if (k.$case === "accept" || k.$case === "reject") answered(k);
      }
      if (miner.readyState === WebSocket.OPEN) miner.send(data);
    });
    miner.on("message", (data) => {
      for (const f of ConnectRequest.decode(new Uint8Array(data as Buffer)).frames) {
        if (f.kind?.$case === "hello") r.hellos.push(f.kind.value);
      }
      if (up.readyState === WebSocket.OPEN) up.send(data);
      else early.push(data);
    });
    miner.on("close", () => up.close());
    up.on("close", () => miner.close());
    up.on("error", () => miner.terminate());
    waiters.shift()?.(r);
  });
  return {
    url: `wss://localhost:${(https.address() as AddressInfo).port}/v1/tunnel`,
    seen,
    /** TLS handshakes completed by miners. */
    handshakes: () => handshakes,
    next(after: number): Promise<Relayed> {
      const r = seen[after];
      return r !== undefined ? Promise.resolve(r) : new Promise((resolve) => waiters.push(resolve));
    },
    close: async () => {
      for (const u of upstreams) u.terminate();
      for (const c of wss.clients) c.terminate();
      wss.close();
      https.closeAllConnections();
      await new Promise<void>((resolve) => https.close(() => resolve()));
    },
  };
}

/**
 * A scripted miner over wss: reads the Challenge and answers a Hello signed
 * over `binding(own)`, where `own` is the exporter value of its own
 * connection. Returns the router's verdict.
 */
async function scriptedHello(
  url: string,
  ca: string,
  key: Hotkey,
  binding: (own: Uint8Array | undefined) => Uint8Array,
  clientTls: TlsOptions = {},
): Promise<{ own: Uint8Array | undefined; verdict: RouterKind }> {
  const ws = new WebSocket(url, { perMessageDeflate: false, ca, ...clientTls });
  let own: Uint8Array | undefined;
  ws.once("upgrade", (res: IncomingMessage) => {
    own = tlsExporterBinding(res.socket);
  });
  const frames: RouterKind[] = [];
  let wake: (() => void) | undefined;
  ws.on("message", (data) => {
    frames.push(...routerKinds(data));
    wake?.();
  });
  const nextFrame = async (): Promise<RouterKind> => {
    while (frames.length === 0) await new Promise<void>((resolve) => (wake = resolve));
    return frames.shift() as RouterKind;
  };
  try {
    const first = await nextFrame();
    if (first.$case !== "challenge") throw new Error(`expected a challenge, got ${first.$case}`);
    const c: Challenge = first.value;
    const bound = binding(own);
    const ts = Date.now();
    const hello: Hello = {
      hotkey: key.address,
      signature: Buffer.from(signHello(key, c.nonce, c.routerId, ts, bound)),
      timestampMs: BigInt(ts),
      models: [{ id: "m1", maxConcurrency: 1, contextLength: 0, kinds: [] }],
      softwareVersion: "binding-test/1",
      protocolVersion: 1,
      channelBinding: Buffer.from(bound),
    };
    ws.send(ConnectRequest.encode({ frames: [{ kind: { $case: "hello", value: hello } }] }).finish());
    return { own, verdict: await nextFrame() };
  } finally {
    ws.terminate();
  }
}

describe("tunnel hello channel binding over wss (TLS relay test)", () => {
  let dir: string;
  let tls: RouterTls;
  let real: MinerTestRouter;
  let relay: Awaited<ReturnType<typeof startTlsRelay>>;
  let hotkey: Hotkey;
  let miner: Miner | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-binding-"));
    tls = await selfSignedLocalhost(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    real = await startMinerTestRouter({ routerId: REAL_ID }, tls);
    relay = await startTlsRelay(real, tls);
    hotkey = await throwawayHotkey();
  });
  afterEach(async () => {
    await miner?.stop();
    miner = undefined;
    await relay.close();
    await real.close();
  });

  function startMiner(url: string) {
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
      {
        hotkey,
        routerPins: new MemoryRouterPins(),
        logger: log.logger,
        extraCaPem: tls.cert,
        backoff: { baseMs: 20, capMs: 50, stableAfterMs: 60_000 },
      },
    );
    return { miner, log, started: miner.start() };
  }

  const sessionsOfMiner = () => real.hub.sessions().filter((s) => s.hotkey === hotkey.address);

  it("a miner connecting straight to the router over wss binds its hello and is accepted", async () => {
    const m = startMiner(`${real.wsUrl}?id=${REAL_ID}`);
    await m.started;
    await m.miner.tunnels[0]?.waitFor((s) => s.state === "connected");
    expect(sessionsOfMiner()).to.have.length(1);
  });

  it("a TLS relay forwarding the real router's challenge and the miner's hello gets Reject, even with ?id= of the real router", async () => {
    const m = startMiner(`${relay.url}?id=${REAL_ID}`);
    await m.started;
    const r = await relay.next(0);
    const reject = await r.verdict;
    // The pin held (the miner signed for the real id), so only the binding refused the relay.
    expect(r.hellos).to.have.length(1);
    expect(r.hellos[0]?.channelBinding.length).to.equal(CHANNEL_BINDING_BYTES);
    expect(r.fromRouter.map((k) => k.$case)).to.deep.equal(["challenge", "reject"]);
    if (reject.$case !== "reject") throw new Error(`the real router answered ${reject.$case}`);
    expect(reject.value.reason).to.equal(RejectReason.REJECT_REASON_BAD_SIGNATURE);
    expect(reject.value.message).to.include("bound to another TLS connection (channel_binding)");
    expect(sessionsOfMiner()).to.deep.equal([]);
    // The miner hears the refusal through the relay and says why.
    await m.miner.tunnels[0]?.waitFor((s) => s.state === "backoff");
    const warned = m.log.lines() as { msg: string; message?: string }[];
    expect(
      warned.some((l) => l.msg === "router rejected the hello" && /channel_binding/.test(l.message ?? "")),
    ).to.equal(true);
    // Every retry ends the same way.
    const again = await relay.next(1);
    expect((await again.verdict).$case).to.equal("reject");
    expect(again.fromRouter.map((k) => k.$case)).to.deep.equal(["challenge", "reject"]);
    expect(sessionsOfMiner()).to.deep.equal([]);
  });

  it("both ends of one wss connection see the same exporter value; the router checks it against the hello", async () => {
    const direct = (binding: (own: Uint8Array | undefined) => Uint8Array) =>
      scriptedHello(real.wsUrl, tls.cert, hotkey, binding);
    const bound = await direct((own) => own ?? new Uint8Array(0));
    expect(bound.own?.length).to.equal(CHANNEL_BINDING_BYTES);
    expect(bound.verdict.$case).to.equal("accept");

    const other = await direct((own) => Uint8Array.from(own ?? [], (b) => b ^ 1));
    expect(other.verdict).to.deep.include({ $case: "reject" });
    expect(other.verdict.$case === "reject" && other.verdict.value.reason).to.equal(
      RejectReason.REJECT_REASON_BAD_SIGNATURE,
    );

    // An unbound hello (a miner that predates the field) is still accepted over TLS.
    const unbound = await direct(() => new Uint8Array(0));
    expect(unbound.verdict.$case).to.equal("accept");

    // A hostile binding length is refused before any signature work.
    const long = await direct(() => new Uint8Array(4096).fill(7));
    expect(long.verdict.$case === "reject" && long.verdict.value.reason).to.equal(
      RejectReason.REJECT_REASON_INVALID_HELLO,
    );
  });

  it("a miner will not speak TLS 1.2 on wss, so a relay cannot strip the binding by downgrading", async () => {
    await relay.close();
    relay = await startTlsRelay(real, tls, { maxVersion: "TLSv1.2" });
    const m = startMiner(`${relay.url}?id=${REAL_ID}`);
    await m.started;
    await m.miner.tunnels[0]?.waitFor((s) => s.state === "backoff" || s.state === "connected");
    expect(m.miner.tunnels[0]?.status.state).to.equal("backoff");
    const failed = (m.log.lines() as { msg: string; reason?: string }[]).find(
      (l) => l.msg === "tunnel not established",
    );
    expect(failed?.reason).to.match(/protocol version/);
    expect(relay.handshakes()).to.equal(0);
    expect(relay.seen).to.deep.equal([]);
    expect(m.miner.tunnels[0]?.status.connects).to.equal(0);
    expect(sessionsOfMiner()).to.deep.equal([]);
  });

  it("a relay talking TLS 1.2 to the router cannot pass a bound hello: the router refuses it", async () => {
    const tls12 = { maxVersion: "TLSv1.2" } as const;
    // The hello carries a 32-byte binding of another connection, as a relay would forward it.
    const relayed = await scriptedHello(
      real.wsUrl,
      tls.cert,
      hotkey,
      () => new Uint8Array(CHANNEL_BINDING_BYTES).fill(9),
      tls12,
    );
    expect(relayed.own, "TLS 1.2 gives no binding").to.deep.equal(new Uint8Array(0));
    expect(relayed.verdict.$case === "reject" && relayed.verdict.value.reason).to.equal(
      RejectReason.REJECT_REASON_BAD_SIGNATURE,
    );
    const unbound = await scriptedHello(real.wsUrl, tls.cert, hotkey, () => new Uint8Array(0), tls12);
    expect(unbound.verdict.$case).to.equal("accept");
  });
});

describe("tunnel hello channel binding on transports without TLS", () => {
  let router: MinerTestRouter;
  let key: Hotkey;
  const opened: RawTunnelClient[] = [];

  beforeEach(async () => {
    router = await startMinerTestRouter({ routerId: REAL_ID });
    key = await throwawayHotkey();
  });
  afterEach(async () => {
    for (const c of opened.splice(0)) c.destroy();
    await router.close();
  });

  const open = async (transport: RawTransport) => {
    const c = await RawTunnelClient.open(transport, {
      grpc: router.grpcUrl.slice("grpc://".length),
      ws: router.wsUrl,
    });
    opened.push(c);
    return c;
  };

  for (const transport of ["grpc", "ws"] as const) {
    it(`${transport}: a bound hello is judged by its signature alone; a binding of the wrong length is refused`, async () => {
      // No TLS here for the router to compare with (a proxy may have ended it): the signature still covers it.
      const fine = await (await open(transport)).handshake(key, {
        channelBinding: new Uint8Array(32).fill(4),
      });
      expect(fine.accept, fine.reject?.message).to.not.equal(undefined);
      const short = await (await open(transport)).handshake(key, { channelBinding: new Uint8Array(31) });
      expect(short.reject?.reason).to.equal(RejectReason.REJECT_REASON_INVALID_HELLO);
      expect(short.reject?.message).to.include("exactly 32 bytes");
      expect(router.hub.sessions().filter((s) => s.hotkey === key.address)).to.have.length(1);
    });
  }
});
