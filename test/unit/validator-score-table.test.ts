import { expect } from "chai";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { formatScoreTable, scoreRows } from "../../validator/score-table.js";
import { scoreMiners } from "../../validator/scoring.js";
import { computeWeights } from "../../validator/weights.js";

describe("validator score table", () => {
  const scores = scoreMiners(
    [
      {
        hotkey: "5B",
        available: true,
        probes: [{ atMs: 1, ok: true, latencyMs: 50, ttftMs: 20 }],
        usage: [],
      },
      {
        hotkey: "5A",
        available: true,
        probes: [{ atMs: 1, ok: true, latencyMs: 300, ttftMs: 20 }],
        usage: [{ model: "m", promptTokens: 20_000, completionTokens: 0, tierMultiplier: 1, successRate: 1 }],
      },
      {
        hotkey: "5C",
        available: false,
        probes: [{ atMs: 1, ok: false, latencyMs: 8000, ttftMs: 0 }],
        usage: [],
      },
      { hotkey: "5Z", available: true, probes: [], usage: [] },
    ],
    DEFAULT_LATENCY_TIERS,
  );
  const uids = new Map([
    ["5A", 4],
    ["5B", 2],
    ["5C", 9],
  ]);
  const weights = computeWeights(
    scores.map((s) => ({ hotkey: s.hotkey, score: s.final })),
    uids,
  );

  it("orders rows best first and joins uids and weights", () => {
    const rows = scoreRows(scores, uids, weights);
    expect(rows.map((r) => [r.score.hotkey, r.uid, r.weight])).to.deep.equal([
      ["5A", 4, 65_535],
      ["5B", 2, 6_586],
      ["5Z", undefined, 0],
      ["5C", 9, 0],
    ]);
  });

  it("prints every column, aligned, with ghosts and unregistered miners marked", () => {
    const text = formatScoreTable(scoreRows(scores, uids, weights));
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).to.match(
      /^uid +hotkey +avail +probe +latency tier +uptime % +tokens 24h +business +final +weight$/,
    );
    expect(lines).to.have.length(6);
    expect(lines[2]).to.match(/^ *4 +5A +yes +pass +75 +100\.0 +20000 +100\.00 +99\.50 +65535$/);
    expect(lines[4]).to.match(/^ *- +5Z +yes +none +0 +0\.0 +0 +0\.00 +3\.00 +0$/);
    expect(lines[5]).to.match(/^ *9 +5C +no +ghost +0 +0\.0 +0 +0\.00 +0\.00 +0$/);
    // Right-aligned numbers end in the same column.
    expect(new Set(lines.slice(2).map((l) => l.length))).to.have.length(1);
    expect(formatScoreTable([])).to.contain("(no miners)");
  });
});
