import { expect } from "chai";
import {
  addRow,
  emptySum,
  figures,
  hotkeyState,
  hourlySeries,
  median,
} from "../../router/console/console-figures.js";
import type { SessionState, SessionView } from "../../router/tunnel/types.js";

function session(state: SessionState): SessionView {
  return {
    sessionId: state,
    hotkey: "5Hk",
    transport: "grpc",
    state,
    models: [],
    inFlight: 0,
    latencyMs: 0,
    connectedSinceMs: 0,
    softwareVersion: "",
  };
}

const outcomes = (served: number, failed: number, cut: number) => ({
  served,
  failedBeforeOutput: failed,
  failedAfterOutput: 0,
  deadlineCut: cut,
});

describe("console figures", () => {
  it("adds ledger rows; success is served over attempts, null with none", () => {
    const s = emptySum();
    expect(figures(s).success_rate).to.equal(null);
    addRow(s, { promptTokens: 10, completionTokens: 5, requests: 2, outcomes: outcomes(3, 1, 0) });
    addRow(s, { promptTokens: 1, completionTokens: 1, requests: 1, outcomes: outcomes(0, 0, 1) });
    expect(figures(s)).to.deep.equal({
      prompt_tokens: 11,
      completion_tokens: 6,
      requests: 3,
      success_rate: 0.6,
    });
  });

  it("a hotkey is active when any tunnel is, else draining, else ghost, else banned", () => {
    expect(hotkeyState([session("ghost"), session("active")])).to.equal("active");
    expect(hotkeyState([session("ghost"), session("draining")])).to.equal("draining");
    expect(hotkeyState([session("banned"), session("ghost")])).to.equal("ghost");
    expect(hotkeyState([session("banned")])).to.equal("banned");
  });

  it("median of the known values, rounded; null with none", () => {
    expect(median([])).to.equal(null);
    expect(median([undefined, 7])).to.equal(7);
    expect(median([30, 10, 20.4])).to.equal(20);
    expect(median([10, 21])).to.equal(16);
  });

  it("hourly points are the differences of cumulative windows, oldest first, never negative", () => {
    const end = 10 * 3_600_000;
    // The last 1, 2, 3 hours hold 5, 5, 12 tokens: nothing in hour 2 back, 7 in hour 3 back.
    const points = hourlySeries(
      [
        { tokens: 5, requests: 1 },
        { tokens: 5, requests: 1 },
        { tokens: 12, requests: 3 },
      ],
      end,
      3_600_000,
    );
    expect(points).to.deep.equal([
      { start_ms: 7 * 3_600_000, tokens: 7, requests: 2 },
      { start_ms: 8 * 3_600_000, tokens: 0, requests: 0 },
      { start_ms: 9 * 3_600_000, tokens: 5, requests: 1 },
    ]);
    // Usage recorded between two reads can make a longer window smaller: shown as 0, not negative.
    const racy = hourlySeries(
      [
        { tokens: 9, requests: 2 },
        { tokens: 4, requests: 1 },
      ],
      end,
      3_600_000,
    );
    expect(racy.map((p) => p.tokens)).to.deep.equal([0, 9]);
  });
});
