import { expect } from "chai";
import { MinerState } from "../../gen/tensorclaw/v1/directory.js";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { disconnectedMiners } from "../../validator/probe-round.js";
import { RECONNECT_GRACE_MS } from "../../validator/reconnect-grace.js";
import type { DirectoryListing } from "../../validator/router-client.js";
import { buildMinerInputs } from "../../validator/score-inputs.js";
import { type ProbeRecord, scoreMiners } from "../../validator/scoring.js";
import { session } from "../support/validator-router.js";

const listing = (hotkeys: string[], unanswered?: string[]): DirectoryListing => ({
  sessions: hotkeys.map((h) => session(h)),
  reportTimeMs: 0n,
  servingSinceMs: 0n,
  ...(unanswered === undefined ? {} : { unanswered }),
});
/** A complete listing of only A, made `ageMs` after the youngest replica started. */
const listedAt = (ageMs: number): DirectoryListing => ({
  sessions: [session("A")],
  reportTimeMs: 1_800_000_000_000n + BigInt(ageMs),
  servingSinceMs: 1_800_000_000_000n,
  unanswered: [],
});
const pass = (atMs: number): ProbeRecord => ({ atMs, ok: true, latencyMs: 50, ttftMs: 20 });
// What a probe round records for a miner no router lists.
const gone = (atMs: number): ProbeRecord => ({ atMs, ok: false, latencyMs: 0, ttftMs: 0 });

describe("validator: a killed miner (listed by no router) is a ghost", () => {
  describe("disconnectedMiners", () => {
    const cases: { name: string; list: DirectoryListing; known: string[]; want: string[] }[] = [
      { name: "every known miner listed", list: listing(["A", "B"]), known: ["A", "B"], want: [] },
      { name: "a known miner listed nowhere", list: listing(["A"]), known: ["B", "A"], want: ["B"] },
      { name: "nobody listed at all", list: listing([]), known: ["B", "A", "A"], want: ["A", "B"] },
      {
        name: "listed in any state (draining) is connected",
        list: {
          sessions: [session("A", { state: MinerState.MINER_STATE_DRAINING })],
          reportTimeMs: 0n,
          servingSinceMs: 0n,
        },
        known: ["A"],
        want: [],
      },
      {
        name: "a replica did not answer: unknown, nobody is disconnected",
        list: listing(["A"], ["grpc://r2 (UNAVAILABLE)"]),
        known: ["A", "B"],
        want: [],
      },
      {
        name: "an empty unanswered list is a complete listing",
        list: listing([], []),
        known: ["A"],
        want: ["A"],
      },
      { name: "listed but not known: nothing", list: listing(["C"]), known: [], want: [] },
    ];
    for (const c of cases) {
      it(c.name, () => expect(disconnectedMiners(c.list, c.known)).to.deep.equal(c.want));
    }

    it("a router that started within the grace may still be getting its miners back: nobody is disconnected", () => {
      expect(disconnectedMiners(listedAt(5_000), ["A", "B"], 60_000)).to.deep.equal([]);
      expect(disconnectedMiners(listedAt(59_999), ["A", "B"], 60_000)).to.deep.equal([]);
    });

    it("once the grace is over, a miner the router still does not list is disconnected", () => {
      expect(disconnectedMiners(listedAt(60_000), ["A", "B"], 60_000)).to.deep.equal(["B"]);
      expect(disconnectedMiners(listedAt(5_000), ["A", "B"], 0)).to.deep.equal(["B"]);
    });

    it("defaults the grace to RECONNECT_GRACE_MS", () => {
      expect(disconnectedMiners(listedAt(RECONNECT_GRACE_MS - 1), ["A", "B"])).to.deep.equal([]);
      expect(disconnectedMiners(listedAt(RECONNECT_GRACE_MS), ["A", "B"])).to.deep.equal(["B"]);
    });
  });

  it("scores a miner whose latest round found it disconnected at base 0, then restores it on a pass", () => {
    const history = (records: ProbeRecord[]) => new Map([["K", records]]);
    const usage = [
      {
        hotkey: "K",
        models: [
          {
            model: "m",
            promptTokens: 10_000n,
            completionTokens: 0n,
            paidPromptTokens: 10_000n,
            paidCompletionTokens: 0n,
            served: 0n,
            failedBeforeOutput: 0n,
            failedAfterOutput: 0n,
            deadlineCut: 0n,
            requests: 1n,
            tierMultiplier: 1,
            businessPoints: 1,
          },
        ],
        promptTokens: 10_000n,
        completionTokens: 0n,
        paidPromptTokens: 10_000n,
        paidCompletionTokens: 0n,
        requests: 1n,
        businessPoints: 1,
      },
    ];
    const passes = Array.from({ length: 9 }, (_, i) => pass(i));
    const [killed] = scoreMiners(
      buildMinerInputs([], history([...passes, gone(9)]), usage),
      DEFAULT_LATENCY_TIERS,
    );
    expect(killed).to.include({ ghost: true, base: 0, availability: 0, probe: 0, latencyTier: 0 });
    // Only its 24 h business remains: 90 % of 100 (it is the only miner with traffic).
    expect(killed?.final).to.be.closeTo(90, 1e-9);
    expect(killed?.uptime).to.be.closeTo(90, 1e-9);
    const [back] = scoreMiners(
      buildMinerInputs([session("K")], history([...passes, gone(9), pass(10)]), usage),
      DEFAULT_LATENCY_TIERS,
    );
    expect(back).to.include({ ghost: false, availability: 100, probe: 100, latencyTier: 100 });
    // 30 + 40 + 20 + 10 × 10/11 uptime.
    expect(back?.base).to.be.closeTo(90 + 100 / 11, 1e-9);
  });
});
