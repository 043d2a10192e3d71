// `npm run bench -- --only <names>`: the benchmarks not run keep their earlier
// figures in the report, each saying which run measured it.
import { expect } from "chai";
import { renderMarkdown } from "../../bench/report-render.js";
import { type BenchReport, type BenchResult, carryOver, countTargets } from "../../bench/report-result.js";

const ORDER = ["tunnel", "api", "startup"];

function result(name: string, value: number): BenchResult {
  return {
    name,
    summary: `the ${name} benchmark`,
    command: `node bench/${name}.ts`,
    status: "ok",
    notes: [],
    durationMs: 1000,
    rows: [
      {
        measure: `${name} speed`,
        value,
        unit: "ms",
        target: { op: "<=", value: 10 },
        peers: [],
        pass: value <= 10,
      },
    ],
  };
}

function report(generatedAt: string, commit: string, quick: boolean, benchmarks: BenchResult[]): BenchReport {
  return {
    generatedAt,
    quick,
    commit,
    uncommittedChanges: false,
    machine: {
      cpus: 2,
      cpuModel: "test",
      node: "v20",
      platform: "linux x64",
      totalMemoryBytes: 2 ** 30,
      loadAverage1m: { start: 0, end: 0 },
    },
    ok: true,
    targets: countTargets(benchmarks),
    benchmarks,
  };
}

describe("bench report: carrying over what --only did not run", () => {
  const earlier = report("2026-01-01T10:00:00.000Z", "aaaaaaa", false, [
    result("tunnel", 5),
    result("api", 50),
    result("startup", 500),
  ]);

  it("keeps the other benchmarks' results, in order, marked with the run that measured them", () => {
    const merged = carryOver([result("startup", 7)], earlier, false, ORDER);
    expect(merged.map((r) => [r.name, r.rows[0]?.value, r.from])).to.deep.equal([
      ["tunnel", 5, { generatedAt: "2026-01-01T10:00:00.000Z", commit: "aaaaaaa" }],
      ["api", 50, { generatedAt: "2026-01-01T10:00:00.000Z", commit: "aaaaaaa" }],
      ["startup", 7, undefined],
    ]);
  });

  it("keeps the original run of a result carried over twice", () => {
    const once = report(
      "2026-02-01T10:00:00.000Z",
      "bbbbbbb",
      false,
      carryOver([result("api", 40)], earlier, false, ORDER),
    );
    const twice = carryOver([result("startup", 8)], once, false, ORDER);
    expect(twice.find((r) => r.name === "tunnel")?.from?.commit).to.equal("aaaaaaa");
    expect(twice.find((r) => r.name === "api")?.from?.commit).to.equal("bbbbbbb");
  });

  it("carries nothing over from a report of the other kind (quick against full), or from none", () => {
    expect(carryOver([result("startup", 7)], earlier, true, ORDER).map((r) => r.name)).to.deep.equal([
      "startup",
    ]);
    expect(carryOver([result("startup", 7)], undefined, false, ORDER).map((r) => r.name)).to.deep.equal([
      "startup",
    ]);
  });

  it("says in REPORT.md what this run measured and where the other figures come from", () => {
    const merged = carryOver([result("startup", 7)], earlier, false, ORDER);
    const md = renderMarkdown({
      ...report("2026-03-01T10:00:00.000Z", "ccccccc", false, merged),
      only: ["startup"],
    });
    expect(md).to.contain(
      "Written by `npm run bench -- --only startup` (full run) on 2026-03-01 10:00:00 UTC",
    );
    expect(md).to.contain(
      "This run measured startup (`--only`); the figures of tunnel, api are carried over",
    );
    expect(md).to.match(
      /^- \*\*tunnel\*\* .*; carried over from the run of 2026-01-01 10:00:00 UTC at commit aaaaaaa$/m,
    );
    expect(md).to.match(/^- \*\*startup\*\* .*`node bench\/startup\.ts`$/m);
    expect(md).to.not.contain("carried over from the run of 2026-03-01");
  });
});
