import { expect } from "chai";
import { LivenessTracker } from "../../router/tunnel/liveness.js";

describe("tunnel liveness tracker", () => {
  it("pings with increasing seqs and closes after maxMissedPongs unanswered pings", () => {
    const t = new LivenessTracker(3);
    expect(t.tick(0)).to.deep.equal({ action: "ping", seq: 1 });
    expect(t.tick(10)).to.deep.equal({ action: "ping", seq: 2 });
    expect(t.tick(20)).to.deep.equal({ action: "ping", seq: 3 });
    expect(t.tick(30)).to.deep.equal({ action: "close", unanswered: 3 });
  });

  it("a pong answers its ping and all older ones, so misses must be consecutive", () => {
    const t = new LivenessTracker(2);
    t.tick(0);
    t.tick(100);
    expect(t.pong(2, 130)).to.equal(30);
    expect(t.tick(200)).to.deep.include({ action: "ping" });
    expect(t.tick(300)).to.deep.include({ action: "ping" });
    expect(t.tick(400)).to.deep.equal({ action: "close", unanswered: 2 });
  });

  it("ignores pongs for unknown or already answered seqs", () => {
    const t = new LivenessTracker(2);
    t.tick(0);
    expect(t.pong(7, 5)).to.equal(undefined);
    expect(t.pong(1, 5)).to.equal(5);
    expect(t.pong(1, 9)).to.equal(undefined);
    expect(t.latencyMs).to.equal(5);
  });

  it("smooths latency: the first sample sets it, later ones move it by a fifth", () => {
    const t = new LivenessTracker(2);
    expect(t.latencyMs).to.equal(0);
    t.observe(100);
    expect(t.latencyMs).to.equal(100);
    t.observe(200);
    expect(t.latencyMs).to.equal(120);
    t.observe(Number.NaN);
    t.observe(-5);
    expect(t.latencyMs).to.equal(120);
  });
});
