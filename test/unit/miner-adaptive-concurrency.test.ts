import { expect } from "chai";
import { silentLogger } from "../../common/logger.js";
import {
  AdaptiveConcurrency,
  DEFAULT_INITIAL_CONCURRENCY,
  FixedConcurrency,
  type RequestObserver,
} from "../../miner/adaptive-concurrency.js";
import { DEMO_MODEL_ID, DemoBackend } from "../../miner/backend/demo.js";
import { CONCURRENCY_UPDATE_GAP_MS, ModelCatalog } from "../../miner/model-catalog.js";
import { FakeClock } from "../support/fake-clock.js";

/**
 * Keeps the miner full for `steps` requests, as steady traffic does: the
 * limit's worth of requests is in flight, and as the oldest is served a new
 * one starts. Each gets its first token `ttftMs(n)` after it started, `n`
 * being the requests in flight then (itself included).
 */
function keepFull(c: AdaptiveConcurrency, model: string, steps: number, ttftMs: (n: number) => number) {
  const inFlight: { q: RequestObserver; n: number }[] = [];
  for (let i = 0; i < steps; i++) {
    while (inFlight.length < c.limit(model)) inFlight.push({ q: c.start(model), n: inFlight.length + 1 });
    const oldest = inFlight.shift() as { q: RequestObserver; n: number };
    oldest.q.firstToken(ttftMs(oldest.n));
    oldest.q.end("served");
  }
  for (const r of inFlight.splice(0)) r.q.end("other");
}

/**
 * Like keepFull, with only `share` of the limit at the backend: the router
 * keeps the advertised limit full, but the rest of it is in the tunnel,
 * dispatched and not yet arrived or answered and not yet back.
 */
function keepShareAtBackend(c: AdaptiveConcurrency, model: string, steps: number, share: number) {
  const inFlight: RequestObserver[] = [];
  for (let i = 0; i < steps; i++) {
    while (inFlight.length < Math.max(1, Math.floor(c.limit(model) * share))) inFlight.push(c.start(model));
    const oldest = inFlight.shift() as RequestObserver;
    oldest.firstToken(20);
    oldest.end("served");
  }
  for (const q of inFlight.splice(0)) q.end("other");
}

describe("miner: adaptive concurrency", () => {
  it("starts at 8 and doubles per window while the backend keeps its first token fast, up to the ceiling", () => {
    const c = new AdaptiveConcurrency({ max: 100 });
    expect(c.limit("m")).to.equal(DEFAULT_INITIAL_CONCURRENCY);
    // Slow start: every request served that was sent at the limit adds one, so 40 requests take it
    // past 20 (one per window, as after a cut, would make about 11).
    keepFull(c, "m", 40, () => 20);
    expect(c.limit("m")).to.be.within(20, 48);
    keepFull(c, "m", 400, () => 20);
    expect(c.limit("m")).to.equal(100);
  });

  it("after its first cut, grows by one per window", () => {
    const c = new AdaptiveConcurrency({ max: 256, initial: 10 });
    c.start("m").end("overloaded");
    expect(c.limit("m")).to.equal(5);
    // About 5 + 6 + 7 requests served at the limit make 8; slow start would have made it past 20.
    keepFull(c, "m", 4 + 5 + 6 + 7, () => 20);
    expect(c.limit("m")).to.be.within(7, 9);
    // Another model has a limit of its own, still where it started.
    expect(c.limit("other")).to.equal(10);
  });

  it("in slow start, grows while the router keeps the limit full with part of it in the tunnel, not while half sits idle", () => {
    // 60 % at the backend: the router's other 40 % are in transit. Slow start still doubles per window.
    const c = new AdaptiveConcurrency({ max: 256 });
    keepShareAtBackend(c, "m", 60, 0.6);
    expect(c.limit("m")).to.be.above(40);
    // After a cut the limit is known to matter: growth needs the whole of it at the backend.
    const cut = new AdaptiveConcurrency({ max: 256, initial: 16 });
    cut.start("m").end("overloaded");
    keepShareAtBackend(cut, "m", 200, 0.6);
    expect(cut.limit("m")).to.equal(8);
    keepFull(cut, "m", 40, () => 20);
    expect(cut.limit("m"), "one per window at the whole limit (not 40)").to.be.within(9, 13);
    // Below half the limit at the backend the router is not sending it: that is no evidence.
    const idle = new AdaptiveConcurrency({ max: 256 });
    keepShareAtBackend(idle, "m", 500, 0.4);
    expect(idle.limit("m")).to.equal(DEFAULT_INITIAL_CONCURRENCY);
  });

  it("does not grow on requests that never filled the limit: idle capacity proves nothing", () => {
    const c = new AdaptiveConcurrency({ max: 256 });
    for (let i = 0; i < 1000; i++) {
      const q = c.start("m");
      q.firstToken(20);
      q.end("served");
    }
    expect(c.limit("m")).to.equal(DEFAULT_INITIAL_CONCURRENCY);
  });

  it("settles near what a backend with a fixed number of slots serves without queueing", () => {
    const c = new AdaptiveConcurrency({ max: 256 });
    // Six slots, 400 ms per answer: past six, requests wait whole answers for their first token.
    const slots = 6;
    const ttft = (n: number) => 50 + Math.floor((n - 1) / slots) * 400;
    keepFull(c, "m", 500, ttft);
    const settled: number[] = [];
    for (let i = 0; i < 50; i++) {
      keepFull(c, "m", 20, ttft);
      settled.push(c.limit("m"));
    }
    expect(Math.max(...settled)).to.be.at.most(2 * slots);
    expect(Math.min(...settled)).to.be.at.least(slots / 2);
  });

  it("cuts the limit when the backend fails for lack of room, not when a request is cancelled or refused", () => {
    const c = new AdaptiveConcurrency({ max: 256 });
    for (let i = 0; i < 5; i++) {
      const q = c.start("m");
      q.end("other");
    }
    expect(c.limit("m")).to.equal(DEFAULT_INITIAL_CONCURRENCY);
    const q = c.start("m");
    q.end("overloaded");
    expect(c.limit("m")).to.equal(DEFAULT_INITIAL_CONCURRENCY / 2);
    // Requests sent before the cut bring no second cut: their news is priced in.
    const before = [c.start("m"), c.start("m")];
    const late = c.start("m");
    late.end("overloaded");
    expect(c.limit("m")).to.equal(2);
    for (const b of before) b.end("overloaded");
    expect(c.limit("m")).to.equal(2);
    expect(() => q.end("overloaded"), "a second end is ignored").not.to.throw();
    expect(c.limit("m")).to.equal(2);
  });

  it("cuts on a passed deadline only when no first token came within a wait already slow", () => {
    const c = new AdaptiveConcurrency({ max: 256 });
    const served = c.start("m");
    served.firstToken(20);
    served.end("served");
    // Cut mid-stream by the router's deadline: a long answer, not a backend short of room.
    const long = c.start("m");
    long.firstToken(20);
    long.end("deadline", 120_000);
    expect(c.limit("m")).to.equal(DEFAULT_INITIAL_CONCURRENCY);
    // A deadline shorter than a first token normally takes (a router sets it): no news either.
    c.start("m").end("deadline", 25);
    expect(c.limit("m")).to.equal(DEFAULT_INITIAL_CONCURRENCY);
    // No first token after a wait far past the 20 ms baseline: the backend is queueing.
    c.start("m").end("deadline", 5_000);
    expect(c.limit("m")).to.equal(DEFAULT_INITIAL_CONCURRENCY / 2);
  });

  it("tells listeners when an advertised limit changes, and only then", () => {
    const c = new AdaptiveConcurrency({ max: 256 });
    let told = 0;
    const off = c.onChange(() => told++);
    const q = c.start("m");
    q.firstToken(10);
    q.end("served");
    expect(told).to.equal(0);
    c.start("m").end("overloaded");
    expect(told).to.equal(1);
    off();
    c.start("m").end("overloaded");
    expect(told).to.equal(1);
  });

  it("is offered to the routers at once when it moves, then in merged updates at most one per 250 ms", async () => {
    const clock = new FakeClock(1_000_000);
    const c = new AdaptiveConcurrency({ max: 256 });
    const catalog = new ModelCatalog({
      backend: new DemoBackend(),
      policy: { configured: [DEMO_MODEL_ID], maxConcurrency: 256, contextLength: 0 },
      intervalMs: 3_600_000,
      timeoutMs: 1000,
      logger: silentLogger(),
      clock,
      concurrency: c,
    });
    await catalog.refresh();
    const offered: number[] = [];
    catalog.onChange((offers) => offered.push(offers[0]?.maxConcurrency ?? -1));
    // Slow start moves the limit on nearly every request served: 40 changes in a burst.
    keepFull(c, DEMO_MODEL_ID, 40, () => 20);
    const grown = c.limit(DEMO_MODEL_ID);
    expect(grown).to.be.above(20);
    expect(offered, "the first change goes at once").to.deep.equal([DEFAULT_INITIAL_CONCURRENCY + 1]);
    await clock.advance(CONCURRENCY_UPDATE_GAP_MS - 1);
    expect(offered).to.have.length(1);
    await clock.advance(1);
    expect(offered, "the rest, merged, when the gap is over").to.deep.equal([
      DEFAULT_INITIAL_CONCURRENCY + 1,
      grown,
    ]);
    // Past the gap, a change (here a cut) goes at once again.
    await clock.advance(CONCURRENCY_UPDATE_GAP_MS);
    c.start(DEMO_MODEL_ID).end("overloaded");
    expect(offered).to.deep.equal([DEFAULT_INITIAL_CONCURRENCY + 1, grown, c.limit(DEMO_MODEL_ID)]);
    expect(c.limit(DEMO_MODEL_ID)).to.be.below(grown);
    catalog.stop();
  });

  it("counts requests of every tunnel together: the backend is one", () => {
    const c = new AdaptiveConcurrency({ max: 256, initial: 4 });
    // Two tunnels with two requests each: together the backend is at its limit of four, so the
    // requests served that started with four in flight grow the limit, whichever tunnel they came
    // on (counted per tunnel, two would never reach the limit).
    const a = [c.start("m"), c.start("m")];
    const b = [c.start("m"), c.start("m")];
    for (let i = 0; i < 8; i++) {
      const tunnel = i % 2 === 0 ? a : b;
      const q = tunnel.shift() as RequestObserver;
      q.firstToken(20);
      q.end("served");
      tunnel.push(c.start("m"));
    }
    expect(c.limit("m")).to.be.above(4);
  });

  it("never starts above a lower --max-concurrency; fixed concurrency never moves", () => {
    expect(new AdaptiveConcurrency({ max: 3 }).limit("m")).to.equal(3);
    const f = new FixedConcurrency(12);
    const q = f.start();
    q.end("overloaded");
    expect(f.limit()).to.equal(12);
  });
});
