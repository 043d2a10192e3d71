import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { RejectReason } from "../../gen/tensorclaw/v1/tunnel.js";
import { FakeClock } from "../support/fake-clock.js";
import { waitForSessions } from "../support/hub-sessions.js";
import { throwawayHotkey } from "../support/keys.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";
import { connectMiner, type HubHarness, startHub } from "../support/tunnel-hub-harness.js";

/** Polls `cond` on the event loop until it holds (the hub's bookkeeping follows socket events). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

for (const transport of ["grpc", "ws"] as const) {
  describe(`tunnel hub caps over ${transport}`, () => {
    let key: Hotkey;
    let other: Hotkey;
    let h: HubHarness | undefined;

    before(async () => {
      key = await throwawayHotkey();
      other = await throwawayHotkey();
    });

    afterEach(async () => {
      await h?.close();
      h = undefined;
    });

    it("refuses a hotkey's tunnel beyond --max-tunnels-per-hotkey with UNAVAILABLE, and takes it once one closes", async () => {
      h = await startHub({ limits: { maxTunnelsPerHotkey: 2 } });
      const first = await connectMiner(h, transport, key);
      await connectMiner(h, transport, key);
      const third = await RawTunnelClient.open(transport, h.endpoints);
      const verdict = await third.handshake(key);
      expect(verdict.reject?.reason).to.equal(RejectReason.REJECT_REASON_UNAVAILABLE);
      expect(verdict.reject?.message).to.match(/already holds 2 tunnels.*at most 2/);
      expect(verdict.reject?.retryAfterMs).to.be.greaterThan(0);
      // Another hotkey is not affected.
      await connectMiner(h, transport, other);
      first.client.end();
      const hub = h.hub;
      await waitForSessions(
        hub,
        (s) => s.filter((v) => v.hotkey === key.address).length === 1,
        "a tunnel to close",
      );
      const again = await RawTunnelClient.open(transport, h.endpoints);
      expect((await again.handshake(key)).accept).to.not.equal(undefined);
      expect(hub.sessions().filter((v) => v.hotkey === key.address)).to.have.length(2);
    });

    it("refuses a stream from an address holding the most handshakes in progress, before any signature check", async () => {
      h = await startHub({ limits: { maxPendingHandshakesPerAddress: 2 } });
      const idle = [
        await RawTunnelClient.open(transport, h.endpoints),
        await RawTunnelClient.open(transport, h.endpoints),
      ];
      for (const c of idle) await c.expect("challenge");
      const third = await RawTunnelClient.open(transport, h.endpoints);
      await third.expect("challenge");
      const reject = await third.expect("reject");
      expect(reject.reason).to.equal(RejectReason.REJECT_REASON_UNAVAILABLE);
      expect(reject.message).to.match(/too many tunnel handshakes in progress from .* \(at most 2\)/);
      await third.closed;
      // Handshakes that finish make room again.
      for (const c of idle) c.destroy();
      const hub = h.hub;
      await until(() => hub.openCount === 0, "the idle handshakes to close");
      await connectMiner(h, transport, key);
    });

    it("refuses hellos beyond the router-wide budget of signature checks per second, saying when to retry", async () => {
      // Time stands still: the budget cannot refill between the two hellos however slow the machine.
      const clock = new FakeClock(Date.now());
      h = await startHub({ clock, limits: { helloChecksPerSecond: 1 } });
      const first = await RawTunnelClient.open(transport, h.endpoints);
      expect((await first.handshake(key, { timestampMs: clock.now() })).accept).to.not.equal(undefined);
      const second = await RawTunnelClient.open(transport, h.endpoints);
      const verdict = await second.handshake(other, { timestampMs: clock.now() });
      expect(verdict.reject?.reason).to.equal(RejectReason.REJECT_REASON_UNAVAILABLE);
      expect(verdict.reject?.message).to.match(/too many hellos/);
      expect(verdict.reject?.retryAfterMs).to.be.at.least(1000);
      await clock.advance(1000);
      const third = await RawTunnelClient.open(transport, h.endpoints);
      expect((await third.handshake(other, { timestampMs: clock.now() })).accept).to.not.equal(undefined);
    });
  });
}
