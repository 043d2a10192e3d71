import { expect } from "chai";
import {
  AIMD_DEFAULTS,
  AimdLimit,
  DEFAULT_FAILURE_DECREASE,
  DEFAULT_INITIAL_LIMIT,
  DEFAULT_MIN_LIMIT,
  DEFAULT_OVERFLOW_FACTOR,
} from "../../common/aimd-limit.js";
import {
  CircuitBreaker,
  DEFAULT_BREAKER_BASE_OPEN_MS,
  DEFAULT_BREAKER_CONSECUTIVE_FAILURES,
  DEFAULT_BREAKER_MAX_OPEN_MS,
} from "../../router/routing/breaker.js";

/** Completes requests at full concurrency until the limit stops moving; returns how many it took. */
function saturate(l: AimdLimit, ceiling: number, rounds = 1000): number {
  for (let i = 0; i < rounds; i++) {
    const before = l.value;
    // The hotkey can never run more than its ceiling at once.
    const c = Math.min(l.usable, ceiling);
    l.succeeded(c, l.firstToken(200, l.epoch, c));
    if (l.value === before) return i;
  }
  return rounds;
}

describe("routing: learned concurrency (AIMD)", () => {
  it("starts low and grows by one per window of healthy requests completed at the limit", () => {
    const l = new AimdLimit();
    expect(l.usable).to.equal(DEFAULT_INITIAL_LIMIT);
    // Each healthy request at the limit adds 1/limit: 2 → 2.5 → 2.9 → 3.24.
    l.succeeded(2, true);
    l.succeeded(2, true);
    expect(l.value).to.be.closeTo(2.9, 1e-9);
    expect(l.usable).to.equal(DEFAULT_INITIAL_LIMIT);
    l.succeeded(2, true);
    expect(l.usable).to.equal(DEFAULT_INITIAL_LIMIT + 1);
  });

  it("does not grow on requests completed below the limit: a hotkey never busy proves nothing", () => {
    const l = new AimdLimit();
    for (let i = 0; i < 100; i++) l.succeeded(1, true);
    expect(l.usable).to.equal(DEFAULT_INITIAL_LIMIT);
  });

  it("with a slow-start busy share, grows in slow start on requests that saw that share in flight; after a cut, on the whole limit", () => {
    const l = new AimdLimit({ ...AIMD_DEFAULTS, initialLimit: 10, slowStart: true, slowStartBusyShare: 0.5 });
    for (let i = 0; i < 100; i++) l.succeeded(4, true, 10);
    expect(l.value, "4 of 10 in flight: below half").to.equal(10);
    l.succeeded(5, true, 10);
    expect(l.value, "5 of 10: half, slow start's step of one").to.equal(11);
    l.failed(l.epoch);
    expect(l.value).to.equal(5.5);
    for (let i = 0; i < 100; i++) l.succeeded(4, true, 5.5);
    expect(l.value, "after the cut, 4 of 5.5 is not the limit").to.equal(5.5);
    l.succeeded(5, true, 5.5);
    expect(l.value).to.be.closeTo(5.5 + 1 / 5.5, 1e-9);
    // The router's own limit (no busy share) still needs the whole limit in flight.
    const router = new AimdLimit({ ...AIMD_DEFAULTS, initialLimit: 10 });
    for (let i = 0; i < 100; i++) router.succeeded(9, true);
    expect(router.value).to.equal(10);
  });

  it("does not grow on requests whose first token was slow", () => {
    const l = new AimdLimit();
    for (let i = 0; i < 100; i++) l.succeeded(2, false);
    expect(l.usable).to.equal(DEFAULT_INITIAL_LIMIT);
  });

  it("a healthy miner grows up to its advertised ceiling and stops there", () => {
    const l = new AimdLimit();
    const steps = saturate(l, 8);
    expect(steps).to.be.lessThan(100);
    expect(l.usable).to.be.at.least(8);
    // Growth needs a request at concurrency >= floor(limit): at most one above the ceiling.
    expect(l.value).to.be.below(9.5);
  });

  it("halves on a failure, down to the floor, once per window", () => {
    const l = new AimdLimit();
    saturate(l, 8);
    const grown = l.value;
    const epoch = l.epoch;
    l.failed(epoch);
    expect(l.value).to.be.closeTo(grown * DEFAULT_FAILURE_DECREASE, 1e-9);
    // Requests dispatched before that cut saw the old limit: their failures are priced in.
    l.failed(epoch);
    l.failed(epoch);
    expect(l.value).to.be.closeTo(grown * DEFAULT_FAILURE_DECREASE, 1e-9);
    for (let i = 0; i < 10; i++) l.failed(l.epoch);
    expect(l.value).to.equal(DEFAULT_MIN_LIMIT);
    expect(l.usable).to.equal(DEFAULT_MIN_LIMIT);
  });

  it("bounds overflow only once the limit has been cut", () => {
    const l = new AimdLimit();
    expect(l.overflow).to.equal(Number.POSITIVE_INFINITY);
    l.failed(l.epoch);
    expect(l.usable).to.equal(DEFAULT_MIN_LIMIT);
    expect(l.overflow).to.equal(DEFAULT_MIN_LIMIT * DEFAULT_OVERFLOW_FACTOR);
  });

  it("shrinks when the first token comes far later than the baseline (a queue is building)", () => {
    const l = new AimdLimit();
    saturate(l, 8);
    const grown = l.value;
    expect(l.firstToken(300, l.epoch, 8)).to.equal(true); // within 3× + slack of the 200 ms baseline
    expect(l.value).to.equal(grown);
    expect(l.firstToken(5_000, l.epoch, 8)).to.equal(false);
    expect(l.value).to.be.lessThan(grown);
  });

  it("never takes a queue built up under load for the new baseline", () => {
    const l = new AimdLimit();
    saturate(l, 8);
    for (let i = 0; i < 500; i++) l.firstToken(5_000, l.epoch, Math.max(2, l.usable));
    expect(l.baselineMs).to.equal(200);
  });

  it("re-baselines a backend that became slower for good instead of pinning it at the floor", () => {
    const l = new AimdLimit();
    l.firstToken(100, l.epoch, 1);
    let healthy = false;
    for (let i = 0; i < 200 && !healthy; i++) healthy = l.firstToken(2_000, l.epoch, 1);
    expect(healthy).to.equal(true);
    expect(l.baselineMs).to.be.greaterThan(100);
  });
});

describe("routing: circuit breaker", () => {
  const quiet = { failures: 0, total: 0 };

  it(`opens after ${DEFAULT_BREAKER_CONSECUTIVE_FAILURES} failures in a row; a success in between resets the count`, () => {
    const b = new CircuitBreaker();
    b.failed(false, 0, quiet);
    b.failed(false, 0, quiet);
    b.succeeded(false);
    b.failed(false, 0, quiet);
    b.failed(false, 0, quiet);
    expect(b.state(0)).to.equal("closed");
    b.failed(false, 10, quiet);
    expect(b.state(10)).to.equal("open");
    expect(b.admits(10)).to.equal(false);
    expect(b.openUntilMs).to.equal(10 + DEFAULT_BREAKER_BASE_OPEN_MS);
  });

  it("lets exactly one trial through once the back-off is over; success closes it", () => {
    const b = new CircuitBreaker();
    for (let i = 0; i < 3; i++) b.failed(false, 0, quiet);
    const t = DEFAULT_BREAKER_BASE_OPEN_MS;
    expect(b.admits(t - 1)).to.equal(false);
    expect(b.state(t)).to.equal("half_open");
    expect(b.admits(t)).to.equal(true);
    expect(b.started(t)).to.equal(true);
    expect(b.admits(t)).to.equal(false);
    expect(b.started(t)).to.equal(false);
    b.succeeded(true);
    expect(b.state(t)).to.equal("closed");
    expect(b.admits(t)).to.equal(true);
  });

  it("doubles the back-off on each failed trial, up to the cap", () => {
    const b = new CircuitBreaker();
    for (let i = 0; i < 3; i++) b.failed(false, 0, quiet);
    let now = 0;
    const periods: number[] = [];
    for (let k = 0; k < 10; k++) {
      now = b.openUntilMs;
      expect(b.started(now)).to.equal(true);
      b.failed(true, now, quiet);
      periods.push(b.openUntilMs - now);
    }
    const base = DEFAULT_BREAKER_BASE_OPEN_MS;
    expect(periods.slice(0, 4)).to.deep.equal([2 * base, 4 * base, 8 * base, 16 * base]);
    expect(Math.max(...periods)).to.equal(DEFAULT_BREAKER_MAX_OPEN_MS);
  });

  it("a cancelled trial frees the trial slot without closing or extending", () => {
    const b = new CircuitBreaker();
    for (let i = 0; i < 3; i++) b.failed(false, 0, quiet);
    const t = b.openUntilMs;
    expect(b.started(t)).to.equal(true);
    b.neutral(true);
    expect(b.state(t)).to.equal("half_open");
    expect(b.started(t)).to.equal(true);
  });

  it("failures of requests sent before it opened do not extend it; their successes do not close it", () => {
    const b = new CircuitBreaker();
    for (let i = 0; i < 3; i++) b.failed(false, 0, quiet);
    const until = b.openUntilMs;
    b.failed(false, 1_000, quiet);
    expect(b.openUntilMs).to.equal(until);
    b.succeeded(false);
    expect(b.state(1_000)).to.equal("open");
  });

  it("opens when most recent requests failed even without three in a row", () => {
    const b = new CircuitBreaker();
    b.failed(false, 0, { failures: 6, total: 10 });
    expect(b.state(0)).to.equal("open");
    const c = new CircuitBreaker();
    c.failed(false, 0, { failures: 6, total: 9 }); // too few requests to judge by ratio
    c.failed(false, 0, { failures: 4, total: 10 }); // ratio below the threshold
    expect(c.state(0)).to.equal("closed");
  });

  it("starts the back-off from its base again once the hotkey has been healthy for a while", () => {
    const b = new CircuitBreaker();
    for (let i = 0; i < 3; i++) b.failed(false, 0, quiet);
    let now = b.openUntilMs;
    b.started(now);
    b.failed(true, now, quiet); // second trip: 2 × base
    now = b.openUntilMs;
    b.started(now);
    b.succeeded(true);
    for (let i = 0; i < 20; i++) b.succeeded(false);
    for (let i = 0; i < 3; i++) b.failed(false, now, quiet);
    expect(b.openUntilMs - now).to.equal(DEFAULT_BREAKER_BASE_OPEN_MS);
  });
});
