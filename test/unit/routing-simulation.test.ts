import { expect } from "chai";
import { PICKER_DEFAULTS } from "../../router/routing/picker.js";
import { seededRandom } from "../support/api-random.js";
import { type SimMinerSpec, type SimResult, servedShares, simulateRouting } from "../support/routing-sim.js";

/**
 * The real RoutingBook and pick() against simulated miners, over thousands
 * of requests on a simulated clock. Every miner below has the same real
 * capacity (8 requests at once, ~0.3 s to first token, ~1.5 s per answer)
 * unless a test says otherwise, so any share above half is bought by a trick.
 * Loads: 3/s is light (latency decides), 7.5/s is ~70 % of the two
 * backends, 12/s is more than they can serve.
 */

const TEN_MINUTES = 600_000;

function share(r: SimResult, hotkey: string): number {
  return servedShares(r).get(hotkey) ?? 0;
}

function duel(cheat: Partial<SimMinerSpec>, ratePerS: number, seed: number): SimResult {
  return simulateRouting({
    miners: [{ hotkey: "cheat", ...cheat }, { hotkey: "honest" }],
    ratePerS,
    durationMs: TEN_MINUTES,
    seed,
  });
}

describe("routing simulation: tricks buy no share", () => {
  for (const rate of [3, 7.5, 12]) {
    it(`four tunnels against one, at ${rate} requests/s: 40–60 %`, () => {
      expect(share(duel({ tunnels: 4 }, rate, 1), "cheat")).to.be.within(0.4, 0.6);
    });

    it(`maxConcurrency 10000 against 8 on the same real capacity, at ${rate} requests/s: 40–60 %`, () => {
      const r = duel({ maxConcurrency: 10_000 }, rate, 2);
      expect(share(r, "cheat")).to.be.within(0.4, 0.6);
      // The claim is not believed: the learned limit stays near what the backend really does.
      const learned = r.book.view().find((v) => v.hotkey === "cheat");
      expect(learned?.usableConcurrency).to.be.at.most(20);
      // Nor does its queue swallow users' requests until their deadline (bounded overflow).
      expect(r.failed).to.equal(0);
    });

    it(`an instant empty first chunk, at ${rate} requests/s: 40–60 %`, () => {
      const r = duel({ emptyFirstChunk: true }, rate, 3);
      expect(share(r, "cheat")).to.be.within(0.4, 0.6);
      // Its measured time to first token is the real one, not ~0.
      const ttft = r.book.view().find((v) => v.hotkey === "cheat")?.ttftEwmaMs ?? 0;
      expect(ttft).to.be.greaterThan(150);
    });

    it(`all three at once, at ${rate} requests/s: 40–60 %`, () => {
      const r = duel({ tunnels: 4, maxConcurrency: 10_000, emptyFirstChunk: true }, rate, 4);
      expect(share(r, "cheat")).to.be.within(0.4, 0.6);
    });
  }
});

describe("routing simulation: failing miners", () => {
  it("a hotkey failing every request is out after a handful, tried alone after each back-off, out again", () => {
    const r = simulateRouting({
      miners: [{ hotkey: "broken", fails: () => true }, { hotkey: "good" }],
      ratePerS: 3,
      durationMs: 180_000,
      seed: 5,
    });
    const times = r.dispatches.get("broken") ?? [];
    // A handful before the breaker opens (requests already out when the third failure lands).
    const burst = times.filter((t) => t < (times[0] ?? 0) + 2_000);
    expect(burst.length).to.be.within(3, 5);
    // Then one trial per back-off, each back-off twice the one before (5 s, 10 s, 20 s, ...):
    // a trial goes with the first request after the back-off ends.
    const trials = times.slice(burst.length);
    expect(trials.length).to.be.within(4, 6);
    let previous = burst.at(-1) as number;
    trials.forEach((t, k) => {
      const backoff = 5_000 * 2 ** k;
      expect(t - previous, `trial ${k}`).to.be.within(backoff, backoff + 3_000);
      previous = t;
    });
    // Users never see it: each failure was retried on the good hotkey.
    expect(r.failed).to.equal(0);
    expect(r.served.get("good")).to.be.greaterThan(400);
    expect(r.book.view().find((v) => v.hotkey === "broken")?.breaker).to.equal("open");
  });

  it("a hotkey that recovers is tried after its back-off and gets its share back", () => {
    const r = simulateRouting({
      miners: [{ hotkey: "flaky", fails: (t) => t < 60_000 }, { hotkey: "good" }],
      ratePerS: 3,
      durationMs: 300_000,
      seed: 6,
    });
    const flaky = r.dispatches.get("flaky") ?? [];
    const good = r.dispatches.get("good") ?? [];
    expect(flaky.filter((t) => t >= 10_000 && t < 60_000).length).to.be.at.most(3);
    const late = (xs: number[]) => xs.filter((t) => t >= 200_000).length;
    expect(late(flaky) / (late(flaky) + late(good))).to.be.within(0.4, 0.6);
    expect(r.failed).to.equal(0);
  });

  it("a hotkey failing three requests in four (never three in a row for long) is kept out too", () => {
    const random = seededRandom(70);
    const r = simulateRouting({
      miners: [{ hotkey: "mostly-broken", fails: () => random() < 0.75 }, { hotkey: "good" }],
      ratePerS: 3,
      durationMs: 300_000,
      seed: 7,
    });
    const bad = r.dispatches.get("mostly-broken")?.length ?? 0;
    const good = r.dispatches.get("good")?.length ?? 0;
    expect(bad / (bad + good)).to.be.lessThan(0.05);
  });
});

describe("routing simulation: latency and learned concurrency", () => {
  it("a slow miner gets less traffic but is not starved", () => {
    const r = simulateRouting({
      miners: [{ hotkey: "slow", ttftMs: 3_000 }, { hotkey: "fast" }],
      ratePerS: 3,
      durationMs: TEN_MINUTES,
      seed: 8,
    });
    const slow = share(r, "slow");
    expect(slow).to.be.lessThan(0.25);
    expect(slow).to.be.greaterThan(PICKER_DEFAULTS.exploreRate / 4);
  });

  it("a healthy miner under load learns its way up to the advertised ceiling, not past it", () => {
    const r = simulateRouting({
      miners: [
        { hotkey: "a", maxConcurrency: 6, capacity: 16 },
        { hotkey: "b", maxConcurrency: 6, capacity: 16 },
      ],
      ratePerS: 7.5,
      durationMs: 120_000,
      seed: 9,
    });
    for (const v of r.book.view()) {
      expect(v.limit, v.hotkey).to.be.at.least(6);
      // Growth needs requests completed at the limit, and the ceiling caps concurrency.
      expect(v.limit, v.hotkey).to.be.below(7.5);
    }
  });

  it("a miner whose backend starts failing has its learned limit cut to the floor", () => {
    const r = simulateRouting({
      miners: [{ hotkey: "sick", fails: (t) => t > 60_000 }, { hotkey: "good" }],
      ratePerS: 7.5,
      durationMs: 90_000,
      seed: 10,
    });
    const healthy = simulateRouting({
      miners: [{ hotkey: "sick" }, { hotkey: "good" }],
      ratePerS: 7.5,
      durationMs: 60_000,
      seed: 10,
    });
    const before = healthy.book.view().find((v) => v.hotkey === "sick");
    const after = r.book.view().find((v) => v.hotkey === "sick");
    expect(before?.usableConcurrency).to.be.at.least(8);
    // Halved once per window of failures (the first failure, then each failed trial).
    expect(after?.usableConcurrency).to.equal(1);
    expect(after?.outcomes.served).to.be.greaterThan(100);
  });
});
