// The audit benchmark's arithmetic and report rows (bench/audit-per-day.ts,
// bench/audit-stats.ts, bench/report-specs-audit.ts): daily totals from
// per-probe figures, the statistics behind them, and how its JSON becomes
// report rows. The measuring itself runs in the bench smoke test.
import { expect } from "chai";
import { type PerDayInputs, perDay } from "../../bench/audit-per-day.js";
import { mean, median, percentile } from "../../bench/audit-stats.js";
import { renderMarkdown } from "../../bench/report-render.js";
import { benchResult } from "../../bench/report-result.js";
import { ShapeError } from "../../bench/report-row.js";
import { BENCHES } from "../../bench/report-specs.js";
import { AUDIT_NOTES, auditRows } from "../../bench/report-specs-audit.js";

const INPUTS: PerDayInputs = {
  probeIntervalS: 60,
  verifyShare: 0.2,
  gradedShare: 0.25,
  livenessCompletionTokens: 5,
  livenessPromptTokens: 495,
  auditPromptTokens: 200,
  auditAnswerTokens: 40,
  auditMaxTokens: 2000,
  referenceTokensPerAudit: 300,
  referenceTokensPerGraded: 100,
  referenceMsPerAudit: 10,
  referenceMsPerGraded: 2,
  validatorCpuMsPerProbe: 0.25,
};

describe("bench audit: probe overhead per miner per day", () => {
  it("counts 1,440 probes a day at a 60 s mean interval, a fifth of them audits", () => {
    const d = perDay(INPUTS);
    expect([d.probes, d.audits, d.liveness]).to.deep.equal([1440, 288, 1152]);
    const sparse = perDay({ ...INPUTS, probeIntervalS: 120, verifyShare: 0.5 });
    expect([sparse.probes, sparse.audits, sparse.liveness]).to.deep.equal([720, 360, 360]);
  });

  it("charges a liveness probe its prompt and the tokens before the cut, an audit its prompt and answer", () => {
    const d = perDay(INPUTS);
    expect(d.livenessTokens).to.equal(1152 * (495 + 5));
    expect(d.auditTokensDemo).to.equal(288 * (200 + 40));
    expect(d.auditTokensBound).to.equal(288 * (200 + 2000));
  });

  it("blends the reference's cost of scored and graded audits by the graded share", () => {
    const d = perDay(INPUTS);
    expect(d.referenceTokens).to.be.closeTo(288 * (0.75 * 300 + 0.25 * 100), 1e-9);
    expect(d.referenceSeconds).to.be.closeTo((288 * (0.75 * 10 + 0.25 * 2)) / 1000, 1e-12);
    expect(perDay({ ...INPUTS, gradedShare: 0 }).referenceTokens).to.equal(288 * 300);
  });

  it("charges the validator's CPU on every probe, audits included", () => {
    expect(perDay(INPUTS).validatorCpuSeconds).to.be.closeTo(0.36, 1e-12);
  });
});

describe("bench audit: statistics", () => {
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);

  it("takes the nearest-rank percentile of unsorted figures", () => {
    expect(percentile(hundred, 95)).to.equal(95);
    expect(percentile(hundred, 100)).to.equal(100);
    expect(percentile([7, 3, 5], 50)).to.equal(5);
    expect(percentile([], 95)).to.be.NaN;
  });

  it("takes the median and the mean", () => {
    expect(median([4, 1, 3, 2])).to.equal(2.5);
    expect(median([9, 1, 5])).to.equal(5);
    expect(mean([1, 2, 6])).to.equal(3);
    expect(median([])).to.be.NaN;
  });
});

/** The JSON bench/audit.ts writes, with made-up figures. */
function benchJson(honest: { passed: number; failed: number; unverifiable: number }) {
  const d = perDay(INPUTS);
  return {
    quick: true,
    reference: {
      audits: 200,
      medianMs: 10,
      p95Ms: 17,
      callsPerAudit: 3,
      promptTokensMean: 240,
      answerTokensMean: 35,
      tokensMean: 275,
      tokensMedian: 280,
      referenceCpuMsPerAudit: 9,
      honest,
      filler: { passed: 1, failed: 49, unverifiable: 0 },
      calibration: { prompts: 4, ms: 250, calls: 16, tokens: 2400 },
    },
    graded: {
      cases: 50,
      referenceMedianMs: 1.2,
      referenceP95Ms: 3,
      referenceTokensMean: 80,
      gradeMsPerCase: 0.01,
      referenceRight: 5,
    },
    agreement: { msPerCase: 0.08, answersPerCase: 4 },
    overhead: {
      sample: 20000,
      liveness: 16000,
      audits: 4000,
      livenessPromptTokensMean: 495,
      livenessPromptTokensMedian: 189,
      auditPromptTokensMean: 200,
      auditPromptTokensMedian: 190,
      auditMaxTokensMean: 2000,
      livenessCompletionTokens: 5,
      auditAnswerTokensDemoMean: 40,
      probeIntervalS: 60,
      verifyShare: 0.2,
      gradedShare: 0.25,
      perDay: d,
      validatorCpu: { probes: 2000, drawMs: 0.05, signMs: 0.2, totalMs: 0.25 },
    },
  };
}

describe("bench audit: report rows", () => {
  const byMeasure = (rows: ReturnType<typeof auditRows>, start: string) => {
    const r = rows.find((x) => x.measure.startsWith(start));
    if (r === undefined) throw new Error(`no row starting ${start}`);
    return r;
  };

  it("reports the share of honest answers passed against the issue's 99 % target, filler beside it", () => {
    const rows = auditRows(benchJson({ passed: 149, failed: 0, unverifiable: 1 }));
    const honest = byMeasure(rows, "reference audit, honest answers passed");
    expect(honest.value).to.be.closeTo((100 * 149) / 150, 1e-9);
    expect(honest.target).to.deep.equal({ op: ">=", value: 99 });
    expect(honest.peers).to.deep.equal([{ label: "filler answers failed", value: 98, unit: "%" }]);
    const worse = auditRows(benchJson({ passed: 140, failed: 10, unverifiable: 0 }));
    expect(byMeasure(worse, "reference audit, honest answers passed").value).to.be.below(99);
  });

  it("names the defaults and daily counts the totals were computed at", () => {
    const rows = auditRows(benchJson({ passed: 150, failed: 0, unverifiable: 0 }));
    const probes = byMeasure(rows, "probes per miner per day per validator");
    expect(probes.measure).to.contain("60 s mean interval");
    expect(probes.value).to.equal(1440);
    expect(probes.peers[0]).to.deep.include({ label: "audits (verify share 0.2)", value: 288 });
    expect(byMeasure(rows, "miner tokens per day per validator, liveness").measure).to.contain(
      "1,152 x (prompt + 5)",
    );
    expect(byMeasure(rows, "reference tokens per day per miner").measure).to.contain("25 % of audits graded");
    expect(byMeasure(rows, "reference audit, calls to the reference per audit").value).to.equal(3);
    const graded = byMeasure(rows, "graded audit, the reference's own answer");
    expect(graded.peers.find((p) => p.label === "cases the reference answered right")).to.deep.equal({
      label: "cases the reference answered right",
      value: 10,
      unit: "%",
    });
  });

  it("fails on a JSON that lacks a figure, naming it", () => {
    const json = benchJson({ passed: 150, failed: 0, unverifiable: 0 });
    const { calibration: _dropped, ...reference } = json.reference;
    expect(() => auditRows({ ...json, reference })).to.throw(ShapeError, "reference.calibration.prompts");
  });

  it("gives every row and every peer a finite figure", () => {
    const rows = auditRows(benchJson({ passed: 150, failed: 0, unverifiable: 0 }));
    for (const r of rows) {
      expect(Number.isFinite(r.value), r.measure).to.equal(true);
      for (const p of r.peers) expect(Number.isFinite(p.value), `${r.measure}: ${p.label}`).to.equal(true);
    }
  });

  it("is in the run, and its reading notes reach the report ahead of notes about the run", () => {
    const spec = BENCHES.find((b) => b.name === "audit");
    if (spec === undefined) throw new Error("no audit benchmark in BENCHES");
    expect(spec.script).to.equal("bench/audit.ts");
    const result = benchResult(
      spec,
      "node bench/audit.ts",
      {
        exitCode: 0,
        signal: null,
        durationMs: 1000,
        timedOut: false,
        leftovers: ["123: node helper.js"],
        json: benchJson({ passed: 150, failed: 0, unverifiable: 0 }),
        stderrTail: "",
      },
      60_000,
    );
    expect(result.status).to.equal("ok");
    expect(result.notes).to.deep.equal([
      ...AUDIT_NOTES,
      "left a helper process running after it exited (killed): 123: node helper.js",
    ]);
    const md = renderMarkdown({
      generatedAt: new Date(0).toISOString(),
      quick: false,
      commit: "abc1234",
      uncommittedChanges: false,
      machine: {
        cpus: 2,
        cpuModel: "x",
        node: "v20",
        platform: "linux x64",
        totalMemoryBytes: 1,
        loadAverage1m: { start: 0, end: 0 },
      },
      ok: true,
      targets: { met: 1, missed: 0 },
      benchmarks: [result],
    });
    expect(md).to.contain("  - note: A reference audit is three calls to the reference");
  });
});
