import { expect } from "chai";
import type { FrameChannel, FrameChannelHandlers } from "../../common/frame-channel.js";
import { silentLogger } from "../../common/logger.js";
import { DemoBackend } from "../../miner/backend/demo.js";
import { TunnelClient } from "../../miner/tunnel/client.js";
import { planRouters } from "../../miner/tunnel/endpoints.js";
import { MemoryRouterPins } from "../../miner/tunnel/router-pins.js";
import { TunnelWatchdog } from "../../miner/tunnel/watchdog.js";
import { FakeClock } from "../support/fake-clock.js";
import { throwawayHotkey } from "../support/keys.js";

describe("miner tunnel watchdog (on a fake clock)", () => {
  function watchdog(clock: FakeClock) {
    const expired: { why: string; atMs: number }[] = [];
    let heard = clock.now();
    const dog = new TunnelWatchdog(
      {
        lastHeardMs: () => heard,
        expire: (why) => expired.push({ why, atMs: clock.now() }),
      },
      clock,
    );
    return { dog, expired, hear: () => (heard = clock.now()) };
  }

  it("expires a handshake step at its deadline; a new deadline replaces the old; stop cancels", async () => {
    const clock = new FakeClock(0);
    const { dog, expired } = watchdog(clock);
    dog.arm(300, "no challenge");
    await clock.advance(299);
    expect(expired).to.deep.equal([]);
    await clock.advance(1);
    expect(expired).to.deep.equal([{ why: "no challenge", atMs: 300 }]);
    dog.arm(300, "no accept");
    await clock.advance(200);
    dog.arm(300, "no accept, again");
    await clock.advance(299);
    expect(expired).to.have.length(1);
    await clock.advance(1);
    expect(expired.at(-1)).to.deep.equal({ why: "no accept, again", atMs: 800 });
    dog.arm(100, "never");
    dog.stop();
    await clock.advance(1000);
    expect(expired).to.have.length(2);
    expect(clock.scheduled()).to.deep.equal([]);
  });

  it("live, expires once the router said nothing for ping interval x (missed pongs + 2), counted from the last message", async () => {
    const clock = new FakeClock(0);
    const { dog, expired, hear } = watchdog(clock);
    dog.watchSilence(200, 2); // 800 ms of silence
    for (let i = 0; i < 10; i++) {
      await clock.advance(100);
      hear();
    }
    expect(expired).to.deep.equal([]);
    // Heard at 1000: gone at 1800, not before.
    await clock.advance(799);
    expect(expired).to.deep.equal([]);
    await clock.advance(1);
    expect(expired).to.deep.equal([{ why: "the router went silent", atMs: 1800 }]);
    // Expired: no timer left behind.
    expect(clock.pending).to.equal(0);
  });

  it("counts a router that allows no missed pongs as allowing one", async () => {
    const clock = new FakeClock(0);
    const { dog, expired } = watchdog(clock);
    dog.watchSilence(100, 0);
    expect(clock.scheduled()).to.deep.equal([{ inMs: 300, repeats: false, unref: true }]);
    await clock.advance(300);
    expect(expired.map((e) => e.atMs)).to.deep.equal([300]);
  });
});

describe("miner tunnel client backoff (on a fake clock)", () => {
  /** A channel whose router is unreachable: closed as soon as it starts. */
  function refused(): FrameChannel {
    let closed = false;
    return {
      transport: "ws",
      peer: "nowhere",
      get closed() {
        return closed;
      },
      send: () => false,
      start: (h: FrameChannelHandlers) => {
        closed = true;
        h.closed({ kind: "going_away", reason: "connection refused", remote: true });
      },
      close: () => {},
    };
  }

  it("redials after full-jitter delays that grow per failure, and stop() ends a backoff at once", async () => {
    const clock = new FakeClock(0);
    const dials: number[] = [];
    const [plan] = planRouters(["ws://127.0.0.1:1/v1/tunnel"], "ws");
    if (plan === undefined) throw new Error("no plan");
    const client = new TunnelClient({
      plan,
      dial: () => {
        dials.push(clock.now());
        return refused();
      },
      session: {
        hotkey: await throwawayHotkey(),
        backend: new DemoBackend(),
        offers: () => [],
        clock,
        softwareVersion: "test",
        handshakeTimeoutMs: 5_000,
      },
      pins: new MemoryRouterPins(),
      backoff: { baseMs: 1000, capMs: 3000, stableAfterMs: 30_000 },
      random: () => 0.5,
      logger: silentLogger(),
    });
    client.start();
    await client.waitFor((s) => s.state === "backoff");
    expect(dials).to.deep.equal([0]);
    // Half of each ceiling: 1000 ms, then 2000, then the 3000 cap.
    await clock.advance(499);
    expect(dials).to.deep.equal([0]);
    await clock.advance(1);
    expect(dials).to.deep.equal([0, 500]);
    await clock.advance(1000 + 1500 + 1500);
    expect(dials).to.deep.equal([0, 500, 1500, 3000, 4500]);
    expect(client.status.state).to.equal("backoff");
    await client.stop();
    expect(client.status.state).to.equal("stopped");
    expect(clock.pending, "the backoff sleep's timer is gone").to.equal(0);
  });
});
