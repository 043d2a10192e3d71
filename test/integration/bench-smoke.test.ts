// Keeps the benchmarks from rotting: `npm run bench -- --quick` runs every
// benchmark script for real (child processes, real servers, real Redis) and
// must write a report with every benchmark's figures. Timings are not judged
// here (benchmarks judge them); only that each figure exists and is a number.
// The second part checks how the runner reports a benchmark that breaks.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, statSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { runBenchChild } from "../../bench/report-child.js";
import { renderMarkdown } from "../../bench/report-render.js";
import { type BenchReport, benchResult } from "../../bench/report-result.js";
import { type BenchSpec, num } from "../../bench/report-specs.js";
import { pollUntil } from "../support/poll.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
/** Every benchmark an issue defined; dropping one from the runner must fail this test. */
const EXPECTED = ["tunnel", "api", "ledger", "validator", "prompt-count", "audit", "startup", "console"];
/** The quick run takes about a minute on 2 cores; this bound only stops a hang. */
const RUN_BOUND_MS = 240_000;

async function npmRunBenchQuick(outDir: string): Promise<{ code: number | null; output: string }> {
  const child = spawn("npm", ["run", "bench", "--", "--quick", "--out", outDir], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let output = "";
  child.stdout.on("data", (d: Buffer) => {
    output += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    output += d.toString();
  });
  const timer = setTimeout(() => {
    if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  }, RUN_BOUND_MS);
  const [code] = (await once(child, "close")) as [number | null];
  clearTimeout(timer);
  return { code, output };
}

describe("npm run bench -- --quick (every benchmark, child processes)", function () {
  this.timeout(RUN_BOUND_MS + 10_000);
  let dir = "";
  let run: { code: number | null; output: string };
  const committed = join(ROOT, "bench", "report.json");
  let committedBefore: number | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-bench-smoke-"));
    committedBefore = existsSync(committed) ? statSync(committed).mtimeMs : undefined;
    run = await npmRunBenchQuick(dir);
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("exits 0 with every benchmark ok", () => {
    expect(run.code, run.output.slice(-4_000)).to.equal(0);
  });

  it("writes report.json with the machine and every benchmark's numeric figures", async () => {
    const report = JSON.parse(await readFile(join(dir, "report.json"), "utf8")) as BenchReport;
    expect(report.quick).to.equal(true);
    expect(report.ok).to.equal(true);
    expect(report.machine.cpus).to.be.a("number").and.be.greaterThan(0);
    expect(report.machine.cpuModel).to.be.a("string").and.not.equal("");
    expect(report.machine.node).to.equal(process.version);
    expect(Number.isNaN(Date.parse(report.generatedAt))).to.equal(false);
    expect(report.benchmarks.map((b) => b.name)).to.deep.equal(EXPECTED);
    let targets = 0;
    for (const b of report.benchmarks) {
      expect(b.status, `${b.name}: ${b.failure ?? ""}`).to.equal("ok");
      expect(b.rows.length, b.name).to.be.greaterThan(0);
      expect(b.raw, b.name).to.be.an("object");
      for (const row of b.rows) {
        expect(Number.isFinite(row.value), `${b.name}: ${row.measure}`).to.equal(true);
        for (const p of row.peers) expect(Number.isFinite(p.value), `${b.name}: ${p.label}`).to.equal(true);
        if (row.target !== undefined) {
          targets++;
          expect(row.pass, `${b.name}: ${row.measure}`).to.be.a("boolean");
        }
      }
    }
    expect(report.targets.met + report.targets.missed).to.equal(targets);
  });

  it("writes REPORT.md with a table line for every figure, beside its target", async () => {
    const report = JSON.parse(await readFile(join(dir, "report.json"), "utf8")) as BenchReport;
    const md = await readFile(join(dir, "REPORT.md"), "utf8");
    expect(md).to.contain(`${report.machine.cpus} CPUs`);
    expect(md).to.contain(`Node ${process.version}`);
    expect(md).to.contain("quick");
    const table = md
      .split("\n")
      .filter((l) => l.startsWith("| "))
      .map((l) =>
        l
          .slice(2, -2)
          .split(" | ")
          .map((c) => c.trim()),
      );
    for (const b of report.benchmarks)
      for (const row of b.rows) {
        const cells = table.find((c) => c[0] === b.name && c[1] === row.measure);
        expect(cells, `${b.name}: ${row.measure}`).to.be.an("array").with.length(6);
        expect(cells?.[2]).to.match(/^-?[\d,.]+( \S+)?$/);
        if (row.target === undefined) expect(cells?.[5]).to.equal("");
        else {
          expect(cells?.[3]).to.match(/^[≥≤=] /);
          expect(cells?.[5]).to.equal(row.pass === true ? "pass" : "**FAIL**");
        }
      }
  });

  it("writes where --out says and leaves the committed report alone", () => {
    expect(run.output).to.contain(`report written to ${join(dir, "REPORT.md")}`);
    expect(existsSync(join(dir, "report.json.tmp"))).to.equal(false);
    expect(existsSync(committed) ? statSync(committed).mtimeMs : undefined).to.equal(committedBefore);
  });
});

describe("bench runner: a benchmark that breaks", function () {
  this.timeout(20_000);
  let dir = "";
  const spec: BenchSpec = {
    name: "probe",
    script: "probe.mjs",
    summary: "a stand-in benchmark",
    rows: (j) => [
      { measure: "speed", value: num(j, "speed"), unit: "ops/s", target: { op: ">=", value: 10 }, peers: [] },
    ],
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-bench-runner-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** Writes `body` as a benchmark script and runs it the way the runner does. */
  async function runScript(body: string, timeoutMs = 15_000) {
    const script = join(dir, `bench-${Math.random().toString(36).slice(2)}.mjs`);
    await writeFile(script, body);
    const jsonFile = `${script}.json`;
    const outcome = await runBenchChild({
      cwd: ROOT,
      script,
      args: ["--quick"],
      jsonFile,
      timeoutMs,
      quiet: true,
    });
    return { outcome, result: benchResult(spec, "probe", outcome, timeoutMs) };
  }

  const writeJson = (json: string) =>
    `import { writeFileSync } from "node:fs";\nwriteFileSync(process.argv[process.argv.indexOf("--json") + 1], ${JSON.stringify(json)});\n`;

  it("is ok and judged against its target when it exits 0 with its figures", async () => {
    const { result } = await runScript(writeJson('{"speed": 4}'));
    expect(result.status).to.equal("ok");
    expect(result.rows[0]?.value).to.equal(4);
    expect(result.rows[0]?.pass).to.equal(false);
  });

  it("fails on a non-zero exit without JSON, naming both", async () => {
    const { result } = await runScript('console.error("boom: no backend"); process.exit(3);\n');
    expect(result.status).to.equal("failed");
    expect(result.failure).to.contain("exited with code 3").and.contain("wrote no JSON file");
    expect(result.stderrTail).to.contain("boom: no backend");
    expect(result.rows).to.deep.equal([]);
    const md = renderMarkdown({
      generatedAt: new Date(0).toISOString(),
      quick: true,
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
      ok: false,
      targets: { met: 0, missed: 0 },
      benchmarks: [result],
    });
    expect(md).to.match(
      /^\| probe +\| \(no figures\) .*\| \*\*FAILED\*\*: exited with code 3; wrote no JSON file \|$/m,
    );
    expect(md).to.contain("  boom: no backend");
  });

  it("fails, keeping its figures, on a non-zero exit with JSON", async () => {
    const { result } = await runScript(`${writeJson('{"speed": 40}')}process.exitCode = 1;\n`);
    expect(result.status).to.equal("failed");
    expect(result.failure).to.equal("exited with code 1");
    expect(result.rows[0]?.pass).to.equal(true);
  });

  it("fails when its JSON lacks a figure or holds a non-number", async () => {
    const missing = await runScript(writeJson('{"speeed": 40}'));
    expect(missing.result.status).to.equal("failed");
    expect(missing.result.failure).to.contain("missing field speed");
    const nan = await runScript(writeJson('{"speed": null}'));
    expect(nan.result.failure).to.contain("field speed is null");
    const garbled = await runScript(writeJson('{"speed": 4'));
    expect(garbled.result.failure).to.contain("unreadable JSON");
  });

  it("kills a benchmark that overruns, with the helpers it started", async () => {
    const { outcome, result } = await runScript(
      [
        'import { spawn } from "node:child_process";',
        'const helper = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });',
        'console.error("helper " + helper.pid);',
        "setInterval(() => {}, 1000);",
      ].join("\n"),
      3_000,
    );
    expect(outcome.timedOut).to.equal(true);
    expect(result.failure).to.contain("did not finish within 3 s");
    const pid = Number(/helper (\d+)/.exec(outcome.stderrTail)?.[1]);
    expect(pid).to.be.greaterThan(0);
    expect(await gone(pid), `helper ${pid} still running`).to.equal(true);
  });

  it("ends helpers a benchmark left running, and notes it", async () => {
    const { outcome, result } = await runScript(
      [
        'import { spawn } from "node:child_process";',
        'const helper = spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });',
        "helper.unref();",
        'console.error("helper " + helper.pid);',
        writeJson('{"speed": 40}'),
      ].join("\n"),
    );
    expect(result.status).to.equal("ok");
    const pid = Number(/helper (\d+)/.exec(outcome.stderrTail)?.[1]);
    expect(result.notes).to.have.length(1);
    expect(result.notes[0])
      .to.contain("left a helper process running")
      .and.contain(`${pid}: ${process.execPath} -e`);
    expect(await gone(pid)).to.equal(true);
  });
});

/**
 * Whether `pid` has ended (no such process, or a zombie awaiting its reaper).
 * SIGKILL is delivered asynchronously and the helper is not our child (no
 * exit event), so this re-reads /proc until the state changes, within a bound.
 */
async function gone(pid: number): Promise<boolean> {
  return pollUntil(
    async () => {
      let stat: string;
      try {
        stat = await readFile(`/proc/${pid}/stat`, "utf8");
      } catch {
        return true; // no such process
      }
      const state = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[0];
      return state === "Z" || state === "X";
    },
    { what: `process ${pid} to end`, timeoutMs: 5_000, intervalMs: 20 },
  ).catch(() => false);
}
