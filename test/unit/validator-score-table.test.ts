import { expect } from "chai";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { failedCell, formatScoreTable, scoreRows } from "../../validator/score-table.js";
import { scoreMiners } from "../../validator/scoring.js";
import { computeWeights } from "../../validator/weights.js";
import { printedTables } from "../support/loop-score-table.js";

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
        usage: [
          {
            model: "m",
            promptTokens: 20_000,
            completionTokens: 0,
            paidPromptTokens: 20_000,
            paidCompletionTokens: 0,
            tierMultiplier: 1,
            successRate: 1,
          },
        ],
      },
      {
        hotkey: "5C",
        available: false,
        probes: [{ atMs: 1, ok: false, latencyMs: 8000, ttftMs: 0 }],
        usage: [],
      },
      { hotkey: "5Z", available: true, probes: [], usage: [], failedModels: ["llama 3", "demo"] },
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
      /^uid +hotkey +avail +probe +latency tier +uptime % +tokens 24h +business +final +weight +audit failed$/,
    );
    expect(lines).to.have.length(6);
    expect(lines[2]).to.match(/^ *4 +5A +yes +pass +75 +100\.0 +20000 +100\.00 +99\.50 +65535 +-$/);
    expect(lines[4]).to.match(/^ *- +5Z +yes +none +0 +0\.0 +0 +0\.00 +3\.00 +0 +demo,llama_3$/);
    expect(lines[5]).to.match(/^ *9 +5C +no +ghost +0 +0\.0 +0 +0\.00 +0\.00 +0 +-$/);
    // Right-aligned numbers end in the same column, where the failed models start.
    const failedAt = (lines[0] ?? "").indexOf("audit failed");
    for (const l of lines.slice(2)) expect(l.slice(failedAt - 2, failedAt)).to.equal("  ");
    expect(new Set(lines.slice(2).map((l) => l.slice(0, failedAt).length))).to.have.length(1);
    expect(formatScoreTable([])).to.contain("(no miners)");
  });

  it("reads back the way end-to-end tests parse it", () => {
    const text = formatScoreTable(scoreRows(scores, uids, weights));
    const [table] = printedTables(`${text}next line\n`);
    expect(table?.map((r) => [r.hotkey, r.tokens, r.weight, r.auditFailed])).to.deep.equal([
      ["5A", 20_000, 65_535, "-"],
      ["5B", 0, 6_586, "-"],
      ["5Z", 0, 0, "demo,llama_3"],
      ["5C", 0, 0, "-"],
    ]);
  });

  it("names at most two failed models per row, counting the rest", () => {
    expect(failedCell([])).to.equal("-");
    expect(failedCell(["a"])).to.equal("a");
    expect(failedCell(["a", "b\tc"])).to.equal("a,b_c");
    expect(failedCell(["a", "b", "c", "d"])).to.equal("a,b,+2");
  });
});
