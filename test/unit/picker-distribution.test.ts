import { expect } from "chai";
import {
  DEFAULT_ROUTE,
  type HotkeyRoute,
  hotkeyCandidates,
  PICKER_DEFAULTS,
  pick,
  pickTrial,
} from "../../router/routing/picker.js";
import type { SessionState, SessionView } from "../../router/tunnel/types.js";
import { seededRandom } from "../support/api-random.js";

const MODEL = "m";

/** One simulated hotkey: its tunnels share one in-flight count per tunnel. */
interface SimMiner {
  id: string;
  state: SessionState;
  /** Advertised per tunnel. */
  maxConcurrency: number;
  /** In flight per tunnel. */
  inFlight: number[];
  /** What the book would know (learned limit, TTFT, breaker). */
  route: HotkeyRoute;
  /** Speed of the simulated backend (ms per request). */
  serviceMs: number;
  otherModel?: boolean;
}

function views(m: SimMiner): SessionView[] {
  return m.inFlight.map((n, t) => ({
    sessionId: `${m.id}#${t}`,
    hotkey: m.id,
    transport: "grpc",
    state: m.state,
    models: [
      { id: m.otherModel ? "other" : MODEL, maxConcurrency: m.maxConcurrency, contextLength: 0, inFlight: n },
    ],
    inFlight: n,
    latencyMs: 1, // ping round trip: must play no part in the choice
    connectedSinceMs: 0,
    softwareVersion: "t",
  }));
}

/** A route as the book would hand it over: learned limit, time to first token; overflow unbounded. */
function route(limit: number, ttftMs: number | undefined, available = true): HotkeyRoute {
  return { limit, overflow: Number.POSITIVE_INFINITY, ttftMs, available };
}

function miner(id: string, over: Partial<SimMiner> & { tunnels?: number } = {}): SimMiner {
  const { tunnels = 1, ...rest } = over;
  return {
    id,
    state: "active",
    maxConcurrency: 8,
    inFlight: Array.from({ length: tunnels }, () => 0),
    route: route(8, 20),
    serviceMs: 20,
    ...rest,
  };
}

const snapshot = (miners: SimMiner[]) => miners.flatMap(views);
const routes = (miners: SimMiner[]) => new Map(miners.map((m) => [m.id, m.route]));
const total = (m: SimMiner) => m.inFlight.reduce((a, b) => a + b, 0);

/**
 * Closed-loop simulation with fixed routes: `steps` arrivals; before each
 * arrival every in-flight request finishes with probability proportional to
 * its miner's speed. Returns picks per hotkey and the peak in-flight per hotkey.
 */
function simulate(miners: SimMiner[], steps: number, seed: number, arrivalsPerStep = 1) {
  const random = seededRandom(seed);
  const picks = new Map<string, number>(miners.map((m) => [m.id, 0]));
  const peak = new Map<string, number>(miners.map((m) => [m.id, 0]));
  let refused = 0;
  let overLearnedWhileOthersHadRoom = 0;
  for (let step = 0; step < steps; step++) {
    for (const m of miners) {
      const pDone = Math.min(0.9, 2 / m.serviceMs);
      m.inFlight = m.inFlight.map((n) => {
        let left = n;
        for (let k = 0; k < n; k++) if (random() < pDone) left--;
        return left;
      });
    }
    for (let a = 0; a < arrivalsPerStep; a++) {
      const snap = snapshot(miners);
      const chosen = pick(snap, routes(miners), MODEL, random);
      if (chosen === undefined) {
        refused++;
        continue;
      }
      const m = miners.find((x) => x.id === chosen.hotkey) as SimMiner;
      const othersHadRoom = miners.some(
        (o) => o !== m && total(o) < Math.min(o.route.limit, o.maxConcurrency),
      );
      if (total(m) >= m.route.limit && othersHadRoom) overLearnedWhileOthersHadRoom++;
      const t = Number(chosen.sessionId.split("#")[1]);
      m.inFlight[t] = (m.inFlight[t] ?? 0) + 1;
      picks.set(m.id, (picks.get(m.id) ?? 0) + 1);
      peak.set(m.id, Math.max(peak.get(m.id) ?? 0, total(m)));
    }
  }
  return { picks, peak, refused, overLearnedWhileOthersHadRoom };
}

function shares(picks: Map<string, number>): Map<string, number> {
  const sum = [...picks.values()].reduce((x, y) => x + y, 0);
  return new Map([...picks].map(([k, v]) => [k, v / sum]));
}

describe("picker: eligibility", () => {
  it("never picks ghost, banned, draining, full, non-offering or breaker-open hotkeys", () => {
    const fast = route(8, 1);
    const miners = [
      miner("ghost", { state: "ghost", route: fast }),
      miner("banned", { state: "banned", route: fast }),
      miner("draining", { state: "draining", route: fast }),
      miner("full", { maxConcurrency: 2, inFlight: [2], route: fast }),
      miner("other", { otherModel: true, route: fast }),
      miner("open", { route: { ...fast, available: false } }),
      miner("ok1", { route: route(8, 400) }),
      miner("ok2", { inFlight: [7], route: route(8, 900) }),
    ];
    const random = seededRandom(1);
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++)
      seen.add(pick(snapshot(miners), routes(miners), MODEL, random)?.hotkey ?? "none");
    expect([...seen].sort()).to.deep.equal(["ok1", "ok2"]);
  });

  it("returns undefined when nobody can serve; exclusions are by hotkey, all its tunnels at once", () => {
    const random = seededRandom(2);
    const full = [miner("a", { maxConcurrency: 1, inFlight: [1] })];
    expect(pick(snapshot(full), routes(full), MODEL, random)).to.equal(undefined);
    expect(pick([], new Map(), MODEL, random)).to.equal(undefined);
    const two = [miner("a", { tunnels: 3 }), miner("b")];
    const snap = snapshot(two);
    for (let i = 0; i < 50; i++)
      expect(pick(snap, routes(two), MODEL, random, new Set(["a"]))?.hotkey).to.equal("b");
    expect(pick(snap, routes(two), MODEL, random, new Set(["a", "b"]))).to.equal(undefined);
    // Every breaker open: no capacity, not a fallback onto failing miners.
    const closed = new Map(two.map((m) => [m.id, { ...m.route, available: false }]));
    expect(pick(snap, closed, MODEL, random)).to.equal(undefined);
    expect(hotkeyCandidates(snap, routes(two), "nope").within).to.have.length(0);
  });

  it("an unmeasured hotkey has the default route: low learned limit, neutral latency, available", () => {
    const c = hotkeyCandidates(snapshot([miner("new", { maxConcurrency: 64 })]), new Map(), MODEL);
    expect(c.within).to.have.length(1);
    expect(c.within[0]).to.include({
      hotkey: "new",
      ceiling: 64,
      usable: DEFAULT_ROUTE.limit,
      ttftMs: undefined,
    });
  });
});

describe("picker: concurrency", () => {
  it("a hotkey's ceiling is the largest of its tunnels, not their sum; in-flight is summed", () => {
    const m = miner("a", {
      tunnels: 4,
      maxConcurrency: 3,
      inFlight: [1, 1, 0, 0],
      route: { ...DEFAULT_ROUTE, limit: 100 },
    });
    const [c] = hotkeyCandidates(snapshot([m]), routes([m]), MODEL).within;
    expect(c).to.include({ ceiling: 3, inFlight: 2, usable: 3 });
    m.inFlight = [1, 1, 1, 0];
    expect(hotkeyCandidates(snapshot([m]), routes([m]), MODEL)).to.deep.equal({ within: [], overflow: [] });
  });

  it("never exceeds the advertised ceiling, and goes past the learned limit only when nobody else has room", () => {
    const miners = [
      miner("a", { maxConcurrency: 3, tunnels: 2, route: route(2, 20) }),
      miner("b", { maxConcurrency: 5, route: route(3, 20) }),
    ];
    const { peak, refused, overLearnedWhileOthersHadRoom } = simulate(miners, 400, 3, 20);
    expect(peak.get("a")).to.equal(3);
    expect(peak.get("b")).to.equal(5);
    expect(refused).to.be.greaterThan(0);
    expect(overLearnedWhileOthersHadRoom).to.equal(0);
  });

  it("stops overflow at the route's overflow bound once the hotkey's limit was cut", () => {
    const random = seededRandom(12);
    const cut = (n: number) => [
      miner("cut", { maxConcurrency: 10, inFlight: [n], route: { ...route(2, 20), overflow: 4 } }),
    ];
    expect(pick(snapshot(cut(3)), routes(cut(3)), MODEL, random)?.hotkey).to.equal("cut");
    expect(pick(snapshot(cut(4)), routes(cut(4)), MODEL, random)).to.equal(undefined);
    // A fresh hotkey (never cut) takes a burst up to its ceiling.
    const fresh = [miner("fresh", { maxConcurrency: 10, inFlight: [9], route: route(2, 20) })];
    expect(pick(snapshot(fresh), routes(fresh), MODEL, random)?.hotkey).to.equal("fresh");
  });

  it("picks the least loaded tunnel of the chosen hotkey", () => {
    const m = miner("a", { tunnels: 3, maxConcurrency: 8, inFlight: [3, 1, 2] });
    const random = seededRandom(9);
    for (let i = 0; i < 20; i++)
      expect(pick(snapshot([m]), routes([m]), MODEL, random)?.sessionId).to.equal("a#1");
  });
});

describe("picker: distribution", () => {
  it("spreads load evenly over equal hotkeys: nobody starved, nobody flooded", () => {
    const miners = ["a", "b", "c", "d", "e"].map((id) =>
      miner(id, { maxConcurrency: 64, route: route(64, 20) }),
    );
    const { picks } = simulate(miners, 20_000, 4, 3);
    for (const [id, s] of shares(picks)) expect(s, id).to.be.within(0.17, 0.23);
  });

  it("more tunnels or a larger advertised ceiling buy no share", () => {
    const miners = [
      miner("tunnels", { tunnels: 4 }),
      miner("claims", { maxConcurrency: 10_000 }),
      miner("plain"),
    ];
    const { picks } = simulate(miners, 20_000, 10, 2);
    for (const [id, s] of shares(picks)) expect(s, id).to.be.within(0.3, 0.37);
  });

  it("is roughly uniform on sequential traffic (nothing in flight)", () => {
    const miners = ["a", "b", "c", "d"].map((id) => miner(id));
    const random = seededRandom(5);
    const counts = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const id = pick(snapshot(miners), routes(miners), MODEL, random)?.hotkey as string;
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    for (const [id, n] of counts) expect(n / 20_000, id).to.be.within(0.22, 0.28);
  });

  it("favours the hotkey with the faster first token without starving the slow one", () => {
    const miners = [
      miner("fast", { serviceMs: 10, route: route(8, 10) }),
      miner("slow", { serviceMs: 200, route: route(8, 200) }),
    ];
    const { picks } = simulate(miners, 20_000, 6);
    const fast = picks.get("fast") ?? 0;
    const slow = picks.get("slow") ?? 0;
    expect(fast).to.be.greaterThan(slow * 3);
    // Exploration alone gives it about exploreRate / 2 of the traffic.
    expect(slow / (fast + slow)).to.be.greaterThan(PICKER_DEFAULTS.exploreRate / 4);
  });

  it("judges an unmeasured hotkey by the median of the others: tried, neither favoured nor shunned", () => {
    const miners = [
      miner("fast", { route: route(8, 10) }),
      miner("mid", { route: route(8, 100) }),
      miner("slow", { route: route(8, 1000) }),
      miner("new", { route: route(8, undefined) }),
    ];
    const { picks } = simulate(miners, 20_000, 11);
    const s = shares(picks);
    expect(s.get("new")).to.be.closeTo(s.get("mid") as number, 0.03);
    expect(s.get("new")).to.be.lessThan(s.get("fast") as number);
    expect(s.get("new")).to.be.greaterThan(s.get("slow") as number);
  });

  it("sends more to the hotkey that has shown more capacity while the other is within its limit", () => {
    const miners = [
      miner("big", { maxConcurrency: 16, route: route(16, 20) }),
      miner("small", { maxConcurrency: 16, route: route(2, 20) }),
    ];
    // About 60 % of the two backends' combined speed: the learned limits steer.
    const { picks, peak } = simulate(miners, 10_000, 7, 2);
    expect(picks.get("big") ?? 0).to.be.greaterThan((picks.get("small") ?? 0) * 2);
    expect(picks.get("small") ?? 0).to.be.greaterThan(0);
    // Past its learned limit only as overflow, when the big one was full.
    expect(peak.get("small")).to.be.lessThan(16);
  });

  it("shifts traffic away from a hotkey whose queue builds up", () => {
    const miners = [miner("busy", { inFlight: [6] }), miner("idle")];
    const random = seededRandom(8);
    let idle = 0;
    for (let i = 0; i < 1000; i++)
      if (pick(snapshot(miners), routes(miners), MODEL, random)?.hotkey === "idle") idle++;
    // Only exploration (half of 5 %) can send to the busy one.
    expect(idle).to.be.greaterThan(950);
  });
});

describe("picker: trials seen from one tunnel (how a probe waits to arrive like a user)", () => {
  const at = (sessionId: string) => ({ hotkey: sessionId.split("#")[0] as string, sessionId });

  it("says yes for a tunnel in proportion to pick's chance of choosing it, whatever the load", () => {
    const miners = [
      miner("idle"),
      miner("busy", { inFlight: [5] }),
      miner("two", { tunnels: 2, inFlight: [1, 3] }),
      miner("slow", { inFlight: [1], route: route(8, 90) }),
      miner("new", { inFlight: [2], route: route(8, undefined) }),
    ];
    const sessions = snapshot(miners);
    const r = routes(miners);
    const n = 200_000;
    const random = seededRandom(21);
    const picked = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const id = pick(sessions, r, MODEL, random)?.sessionId ?? "";
      picked.set(id, (picked.get(id) ?? 0) + 1);
    }
    for (const s of sessions) {
      let yes = 0;
      for (let i = 0; i < n; i++) if (pickTrial(sessions, r, MODEL, at(s.sessionId), random) === "yes") yes++;
      // Five hotkeys: a trial is pick given the hotkey is one of its two draws, 5 / 2 times as likely.
      const expected = ((picked.get(s.sessionId) ?? 0) / n) * 2.5;
      expect(yes / n, s.sessionId).to.be.closeTo(expected, 0.012);
    }
    // The busier tunnel of "two" never gets a user request, so never a yes.
    expect(picked.get("two#1") ?? 0).to.equal(0);
    // The idle hotkey says yes far more often than the busy one (which still beats the slow one).
    const share = (id: string) => {
      let yes = 0;
      for (let i = 0; i < 10_000; i++) if (pickTrial(sessions, r, MODEL, at(id), random) === "yes") yes++;
      return yes / 10_000;
    };
    const idle = share("idle#0");
    expect(idle).to.be.above(0.8);
    expect(share("busy#0")).to.be.below(idle / 2);
  });

  it("says never where no load could send a user request, and no while the hotkey is full", () => {
    const miners = [
      miner("a"),
      miner("ghost", { state: "ghost" }),
      miner("open", { route: route(8, 20, false) }),
      miner("full", { inFlight: [8] }),
      miner("other", { otherModel: true }),
    ];
    const sessions = snapshot(miners);
    const r = routes(miners);
    const random = seededRandom(3);
    const trial = (id: string, exclude: ReadonlySet<string> = new Set()) =>
      pickTrial(sessions, r, MODEL, at(id), random, exclude);
    expect(trial("ghost#0")).to.equal("never");
    expect(trial("open#0")).to.equal("never");
    expect(trial("other#0")).to.equal("never");
    expect(trial("a#0", new Set(["a"]))).to.equal("never");
    expect(trial("gone#0")).to.equal("never");
    // A tunnel id under another hotkey's name is no target.
    expect(pickTrial(sessions, r, MODEL, { hotkey: "a", sessionId: "full#0" }, random)).to.equal("never");
    for (let i = 0; i < 200; i++) expect(trial("full#0")).to.equal("no");
    // The only hotkey with room always says yes.
    expect(pickTrial(snapshot([miners[0] as SimMiner]), r, MODEL, at("a#0"), random)).to.equal("yes");
  });
});
