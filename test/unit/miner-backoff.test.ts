import { expect } from "chai";
import {
  afterDisconnect,
  type BackoffPolicy,
  backoffCeilingMs,
  backoffDelayMs,
  DEFAULT_BACKOFF,
  INITIAL_BACKOFF,
} from "../../miner/tunnel/backoff.js";

describe("miner backoff", () => {
  const p: BackoffPolicy = { baseMs: 1000, capMs: 30_000, stableAfterMs: 30_000 };

  it("defaults to a 1 s base and a 30 s cap", () => {
    expect(DEFAULT_BACKOFF.baseMs).to.equal(1000);
    expect(DEFAULT_BACKOFF.capMs).to.equal(30_000);
  });

  it("doubles the jitter ceiling per failed attempt up to the cap", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 40].map((a) => backoffCeilingMs(p, a))).to.deep.equal([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });

  it("draws the delay uniformly below the ceiling (full jitter)", () => {
    const s = { attempt: 3 };
    expect(backoffDelayMs(p, s, () => 0)).to.equal(0);
    expect(backoffDelayMs(p, s, () => 0.5)).to.equal(4000);
    expect(backoffDelayMs(p, s, () => 0.999_999)).to.equal(7999);
    // A broken random source cannot push the delay outside the window.
    expect(backoffDelayMs(p, s, () => 7)).to.equal(8000);
    expect(backoffDelayMs(p, s, () => -1)).to.equal(0);
  });

  it("counts failures and short-lived connections as one more attempt", () => {
    let s = INITIAL_BACKOFF;
    s = afterDisconnect(p, s, undefined);
    expect(s.attempt).to.equal(1);
    s = afterDisconnect(p, s, 29_999);
    expect(s.attempt).to.equal(2);
  });

  it("resets only after a connection stayed up for the stable period", () => {
    const s = afterDisconnect(p, { attempt: 4 }, 30_000);
    expect(s.attempt).to.equal(0);
  });

  it("stops counting once the cap is reached", () => {
    let s = INITIAL_BACKOFF;
    for (let i = 0; i < 100; i++) s = afterDisconnect(p, s, undefined);
    expect(backoffCeilingMs(p, s.attempt)).to.equal(30_000);
    expect(s.attempt).to.be.lessThan(10);
  });
});
