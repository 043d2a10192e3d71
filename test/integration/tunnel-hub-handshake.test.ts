import { status as GrpcStatus } from "@grpc/grpc-js";
import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { signHello } from "../../common/signing.js";
import { RejectReason } from "../../gen/tensorclaw/v1/tunnel.js";
import { FakeClock } from "../support/fake-clock.js";
import { throwawayHotkey } from "../support/keys.js";
import { type RawClosed, type RawTransport, RawTunnelClient } from "../support/raw-tunnel-client.js";
import { type HubHarness, startHub } from "../support/tunnel-hub-harness.js";

/** The close a transport reports for a kind of refusal. */
function expectClosed(closed: RawClosed, transport: RawTransport, grpc: GrpcStatus, ws: number): void {
  if (transport === "grpc") expect(closed.grpcCode, closed.reason).to.equal(grpc);
  else expect(closed.wsCode, closed.reason).to.equal(ws);
}

for (const transport of ["grpc", "ws"] as const) {
  describe(`tunnel hub handshake over ${transport}`, () => {
    let miner: Hotkey;
    let other: Hotkey;
    let h: HubHarness | undefined;

    before(async () => {
      miner = await throwawayHotkey();
      other = await throwawayHotkey();
    });

    afterEach(async () => {
      await h?.close();
      h = undefined;
    });

    it("sends a fresh challenge, accepts a good hello and registers the session", async () => {
      h = await startHub();
      const c = await RawTunnelClient.open(transport, h.endpoints);
      const v = await c.handshake(miner, {
        models: [{ id: "llama", maxConcurrency: 2, contextLength: 4096, kinds: [] }],
      });
      expect(v.challenge.nonce).to.have.length(32);
      expect(v.challenge.routerId).to.equal("router-test");
      expect(v.challenge.protocolVersion).to.equal(1);
      expect(v.accept?.maxMessageBytes).to.equal(4 * 1024 * 1024);
      const views = h.hub.sessions();
      expect(views).to.have.length(1);
      expect(views[0]).to.include({ sessionId: v.accept?.sessionId, hotkey: miner.address, transport });
      expect(views[0]?.state).to.equal("active");
      expect(views[0]?.models).to.deep.equal([
        { id: "llama", maxConcurrency: 2, contextLength: 4096, inFlight: 0, kinds: ["chat"] },
      ]);
      // A second tunnel from the same hotkey is its own session with its own nonce.
      const c2 = await RawTunnelClient.open(transport, h.endpoints);
      const v2 = await c2.handshake(miner);
      expect(v2.accept?.sessionId).to.not.equal(v.accept?.sessionId);
      expect(Buffer.from(v2.challenge.nonce).equals(Buffer.from(v.challenge.nonce))).to.equal(false);
      expect(h.hub.sessions()).to.have.length(2);
    });

    it("refuses a forged signature with BAD_SIGNATURE and closes the stream", async () => {
      h = await startHub();
      const c = await RawTunnelClient.open(transport, h.endpoints);
      const v = await c.handshake(miner, { signature: new Uint8Array(64).fill(7) });
      expect(v.reject?.reason).to.equal(RejectReason.REJECT_REASON_BAD_SIGNATURE);
      expectClosed(await c.closed, transport, GrpcStatus.PERMISSION_DENIED, 1008);
      expect(h.hub.sessions()).to.have.length(0);
    });

    it("refuses a hello naming another hotkey than the signer (wrong hotkey)", async () => {
      h = await startHub();
      const c = await RawTunnelClient.open(transport, h.endpoints);
      const v = await c.handshake(miner, { claimedHotkey: other.address });
      expect(v.reject?.reason).to.equal(RejectReason.REJECT_REASON_BAD_SIGNATURE);
      expect(h.hub.sessions()).to.have.length(0);
    });

    it("refuses a hello signed for another router", async () => {
      h = await startHub();
      const c = await RawTunnelClient.open(transport, h.endpoints);
      const v = await c.handshake(miner, { routerId: "router-elsewhere" });
      expect(v.reject?.reason).to.equal(RejectReason.REJECT_REASON_BAD_SIGNATURE);
    });

    it("refuses a stale hello (outside the 30 s window of the router's clock) with STALE", async () => {
      const now = 1_800_000_000_000;
      h = await startHub({ clock: new FakeClock(now) });
      const c = await RawTunnelClient.open(transport, h.endpoints);
      const v = await c.handshake(miner, { timestampMs: now - 30_001 });
      expect(v.reject?.reason).to.equal(RejectReason.REJECT_REASON_STALE);
      expectClosed(await c.closed, transport, GrpcStatus.PERMISSION_DENIED, 1008);
      // The same clock accepts a hello inside the window.
      const ok = await RawTunnelClient.open(transport, h.endpoints);
      expect((await ok.handshake(miner, { timestampMs: now - 29_000 })).accept).to.not.equal(undefined);
    });

    it("refuses a replayed hello with REPLAYED (nonce reuse forced through the random source)", async () => {
      // A router that (wrongly) reused a nonce is the only way a replay can still verify.
      const fixed = new Uint8Array(32).fill(9);
      h = await startHub({ randomBytes: (n) => (n === 32 ? fixed : new Uint8Array(n).fill(1)) });
      const ts = Date.now();
      // sr25519 signatures are randomised: a replay resends the very bytes seen on the wire.
      const signature = signHello(miner, fixed, "router-test", ts);
      const first = await RawTunnelClient.open(transport, h.endpoints);
      expect((await first.handshake(miner, { timestampMs: ts, signature })).accept).to.not.equal(undefined);
      const replayer = await RawTunnelClient.open(transport, h.endpoints);
      const v2 = await replayer.handshake(miner, { timestampMs: ts, signature });
      expect(v2.reject?.reason).to.equal(RejectReason.REJECT_REASON_REPLAYED);
      expect(h.hub.sessions()).to.have.length(1);
    });

    it("asks the admission hook (sync or async) and refuses with NOT_ADMITTED", async () => {
      const asked: string[] = [];
      h = await startHub({
        admit: async (hotkey) => {
          asked.push(hotkey);
          return hotkey === miner.address;
        },
      });
      const bad = await RawTunnelClient.open(transport, h.endpoints);
      expect((await bad.handshake(other)).reject?.reason).to.equal(RejectReason.REJECT_REASON_NOT_ADMITTED);
      const good = await RawTunnelClient.open(transport, h.endpoints);
      expect((await good.handshake(miner)).accept).to.not.equal(undefined);
      expect(asked).to.deep.equal([other.address, miner.address]);
    });

    it("refuses an unsupported protocol version and an invalid model offer", async () => {
      h = await startHub();
      const c = await RawTunnelClient.open(transport, h.endpoints);
      expect((await c.handshake(miner, { protocolVersion: 0 })).reject?.reason).to.equal(
        RejectReason.REJECT_REASON_UNSUPPORTED_VERSION,
      );
      const c2 = await RawTunnelClient.open(transport, h.endpoints);
      const v = await c2.handshake(miner, {
        models: [{ id: "m", maxConcurrency: 0, contextLength: 0, kinds: [] }],
      });
      expect(v.reject?.reason).to.equal(RejectReason.REJECT_REASON_INVALID_HELLO);
      expectClosed(await c2.closed, transport, GrpcStatus.INVALID_ARGUMENT, 1007);
    });

    it("closes a stream that sends no hello within the hello timeout", async () => {
      const clock = new FakeClock();
      h = await startHub({ clock, timings: { helloTimeoutMs: 150 } });
      const c = await RawTunnelClient.open(transport, h.endpoints);
      const challenge = await c.expect("challenge");
      expect(challenge.helloTimeoutMs).to.equal(150);
      await clock.advance(149);
      expect(h.hub.openCount, "still waiting for the hello").to.equal(1);
      await clock.advance(1);
      expect(h.hub.openCount).to.equal(0);
      expectClosed(await c.closed, transport, GrpcStatus.DEADLINE_EXCEEDED, 1008);
      expect(h.hub.openCount).to.equal(0);
    });
  });
}
