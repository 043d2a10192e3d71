import { expect } from "chai";
import { candidates, modelOffered, PICKER_DEFAULTS, pick } from "../../router/routing/picker.js";
import type { SessionState, SessionView } from "../../router/tunnel/types.js";
import { seededRandom } from "../support/api-random.js";

const MODEL = "m";

interface SimMiner {
  id: string;
  state: SessionState;
  latencyMs: number;
  maxConcurrency: number;
  inFlight: number;
  otherModel?: boolean;
}

function view(m: SimMiner): SessionView {
  return {
    sessionId: m.id,
    hotkey: `hk-${m.id}`,
    transport: "grpc",
    state: m.state,
    models: [
      {
        id: m.otherModel ? "other" : MODEL,
        maxConcurrency: m.maxConcurrency,
        contextLength: 0,
        inFlight: m.inFlight,
      },
    ],
    inFlight: m.inFlight,
    latencyMs: m.latencyMs,
    connectedSinceMs: 0,
    softwareVersion: "t",
  };
}

function miner(id: string, over: Partial<SimMiner> = {}): SimMiner {
  return { id, state: "active", latencyMs: 20, maxConcurrency: 8, inFlight: 0, ...over };
}

/**
 * Closed-loop simulation: `steps` arrivals; before each arrival every
 * in-flight request on a miner finishes with probability proportional to the
 * miner's speed (1 / latency). Returns picks per miner and the peak in-flight.
 */
function simulate(miners: SimMiner[], steps: number, seed: number, arrivalsPerStep = 1) {
  const random = seededRandom(seed);
  const picks = new Map<string, number>(miners.map((m) => [m.id, 0]));
  const peak = new Map<string, number>(miners.map((m) => [m.id, 0]));
  let refused = 0;
  for (let step = 0; step < steps; step++) {
    for (const m of miners) {
      const pDone = Math.min(0.9, 2 / m.latencyMs);
      let finished = 0;
      for (let k = 0; k < m.inFlight; k++) if (random() < pDone) finished++;
      m.inFlight -= finished;
    }
    for (let a = 0; a < arrivalsPerStep; a++) {
      const chosen = pick(miners.map(view), MODEL, random);
      if (chosen === undefined) {
        refused++;
        continue;
      }
      const m = miners.find((x) => x.id === chosen.sessionId) as SimMiner;
      m.inFlight++;
      picks.set(m.id, (picks.get(m.id) ?? 0) + 1);
      peak.set(m.id, Math.max(peak.get(m.id) ?? 0, m.inFlight));
    }
  }
  return { picks, peak, refused };
}

describe("picker: eligibility", () => {
  it("never picks ghost, banned, draining, full or non-offering sessions", () => {
    const miners = [
      miner("ghost", { state: "ghost", latencyMs: 1 }),
      miner("banned", { state: "banned", latencyMs: 1 }),
      miner("draining", { state: "draining", latencyMs: 1 }),
      miner("full", { maxConcurrency: 2, inFlight: 2, latencyMs: 1 }),
      miner("other", { otherModel: true, latencyMs: 1 }),
      miner("ok1", { latencyMs: 400 }),
      miner("ok2", { latencyMs: 900, inFlight: 7 }),
    ];
    const random = seededRandom(1);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) seen.add(pick(miners.map(view), MODEL, random)?.sessionId ?? "none");
    expect([...seen].sort()).to.deep.equal(["ok1", "ok2"]);
  });

  it("returns undefined when nobody can serve, and honours exclusions", () => {
    const random = seededRandom(2);
    const full = [miner("a", { maxConcurrency: 1, inFlight: 1 })];
    expect(pick(full.map(view), MODEL, random)).to.equal(undefined);
    expect(pick([], MODEL, random)).to.equal(undefined);
    const two = [miner("a"), miner("b")].map(view);
    for (let i = 0; i < 50; i++) expect(pick(two, MODEL, random, new Set(["a"]))?.sessionId).to.equal("b");
    expect(pick(two, MODEL, random, new Set(["a", "b"]))).to.equal(undefined);
    expect(candidates(two, "nope")).to.have.length(0);
  });

  it("tells an offered-but-busy model from an unknown one", () => {
    const views = [miner("g", { state: "ghost" })].map(view);
    expect(modelOffered(views, MODEL)).to.equal(true);
    expect(modelOffered(views, "unknown")).to.equal(false);
  });

  it("never exceeds a concurrency limit under saturation", () => {
    const miners = [miner("a", { maxConcurrency: 3 }), miner("b", { maxConcurrency: 5 })];
    const { peak, refused } = simulate(miners, 400, 3, 20);
    expect(peak.get("a")).to.equal(3);
    expect(peak.get("b")).to.equal(5);
    expect(refused).to.be.greaterThan(0);
  });
});

describe("picker: distribution", () => {
  it("spreads load evenly over equal miners: nobody starved, nobody flooded", () => {
    const miners = ["a", "b", "c", "d", "e"].map((id) => miner(id, { maxConcurrency: 64 }));
    const { picks } = simulate(miners, 20_000, 4, 3);
    const total = [...picks.values()].reduce((x, y) => x + y, 0);
    for (const [id, n] of picks) {
      expect(n / total, id).to.be.within(0.17, 0.23);
    }
  });

  it("is roughly uniform on sequential traffic (nothing in flight)", () => {
    const views = ["a", "b", "c", "d"].map((id) => view(miner(id)));
    const random = seededRandom(5);
    const counts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const id = pick(views, MODEL, random)?.sessionId as string;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    for (const [id, n] of counts) expect(n / 20_000, id).to.be.within(0.22, 0.28);
  });

  it("favours the fast miner without starving the slow one", () => {
    const miners = [miner("fast", { latencyMs: 10 }), miner("slow", { latencyMs: 200 })];
    const { picks } = simulate(miners, 20_000, 6);
    const fast = picks.get("fast") ?? 0;
    const slow = picks.get("slow") ?? 0;
    expect(fast).to.be.greaterThan(slow * 3);
    // Exploration alone gives it about exploreRate / 2 of the traffic.
    expect(slow / (fast + slow)).to.be.greaterThan(PICKER_DEFAULTS.exploreRate / 4);
  });

  it("sends more to the miner with more capacity", () => {
    const miners = [miner("big", { maxConcurrency: 16 }), miner("small", { maxConcurrency: 2 })];
    const { picks } = simulate(miners, 10_000, 7, 4);
    expect(picks.get("big") ?? 0).to.be.greaterThan((picks.get("small") ?? 0) * 2);
    expect(picks.get("small") ?? 0).to.be.greaterThan(0);
  });

  it("shifts traffic away from a miner whose queue builds up", () => {
    const views = [view(miner("busy", { inFlight: 6 })), view(miner("idle"))];
    const random = seededRandom(8);
    let idle = 0;
    for (let i = 0; i < 1000; i++) if (pick(views, MODEL, random)?.sessionId === "idle") idle++;
    // Only exploration (half of 5 %) can send to the busy one.
    expect(idle).to.be.greaterThan(950);
  });
});
