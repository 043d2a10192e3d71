import { expect } from "chai";
import { exponentialGapMs, ProbeSchedule } from "../../validator/probe-schedule.js";
import { seededRandom } from "../support/api-random.js";

/** Runs the schedule over `horizonMs` in 10 ms steps; probe times per miner. */
function simulate(miners: string[], meanMs: number, horizonMs: number, seed: number) {
  const s = new ProbeSchedule(meanMs, seededRandom(seed));
  s.sync(miners, 0);
  const times = new Map<string, number[]>(miners.map((m) => [m, []]));
  for (let t = 0; t <= horizonMs; t += 10) for (const hk of s.takeDue(t)) times.get(hk)?.push(t);
  return times;
}

function gaps(ts: readonly number[]): number[] {
  return ts.slice(1).map((t, i) => t - (ts[i] as number));
}

describe("validator: probe schedule", () => {
  it("draws exponential gaps: mean as configured, spread like a Poisson process", () => {
    const r = seededRandom(7);
    const xs = Array.from({ length: 20_000 }, () => exponentialGapMs(1000, r));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
    expect(mean).to.be.within(970, 1030);
    // An exponential's standard deviation equals its mean; a fixed interval would give 0.
    expect(sd / mean).to.be.within(0.95, 1.05);
    expect(Math.min(...xs)).to.be.at.least(1);
  });

  it("probes each miner about once per mean interval, at times of its own", () => {
    const miners = Array.from({ length: 20 }, (_, i) => `hk${i}`);
    const times = simulate(miners, 1000, 200_000, 3);
    for (const ts of times.values()) expect(ts.length).to.be.within(150, 250);
    // Not in lockstep: the first probes of the miners are spread, not one burst.
    const firsts = [...times.values()].map((ts) => ts[0] as number);
    expect(new Set(firsts).size).to.be.at.least(18);
    const all = gaps([...times.values()].flat().sort((a, b) => a - b));
    // Merged over 20 miners the gaps are ~mean/20; no single instant holds many probes.
    const bursts = [...times.values()].flat().reduce((m, t) => m.set(t, (m.get(t) ?? 0) + 1), new Map());
    expect(Math.max(...bursts.values())).to.be.at.most(4);
    expect(all.reduce((a, b) => a + b, 0) / all.length).to.be.within(35, 65);
  });

  it("adds new miners and forgets ones no longer listed", () => {
    const s = new ProbeSchedule(100, seededRandom(1));
    s.sync(["a", "b"], 0);
    expect(s.size).to.equal(2);
    s.sync(["b", "c"], 0);
    expect(s.size).to.equal(2);
    const seen = new Set<string>();
    for (let t = 0; t < 5000; t += 5) for (const hk of s.takeDue(t)) seen.add(hk);
    expect([...seen].sort()).to.deep.equal(["b", "c"]);
  });

  it("does not burst after the loop was late: each due miner is probed once", () => {
    const s = new ProbeSchedule(100, seededRandom(2));
    s.sync(["a", "b", "c"], 0);
    expect(s.takeDue(10_000).sort()).to.deep.equal(["a", "b", "c"]);
    expect(s.takeDue(10_000)).to.deep.equal([]);
    expect(s.nextDueMs()).to.be.greaterThan(10_000);
  });
});
