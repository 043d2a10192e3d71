// `npm run bench [-- --quick] [-- --out <dir>] [-- --only <names>]`: every
// benchmark, one after another (never in parallel: the machine has 2 cores and
// they would measure each other), each as its own child process writing JSON,
// then one report: bench/REPORT.md (the human table) and bench/report.json.
//
// A full run rewrites the committed report in bench/; a quick run (the smoke
// mode `npm test` uses) writes to a fresh temporary folder unless --out says
// where. `--only` runs some benchmarks and carries the others' results over
// from the report.json already in the output folder, each marked with the run
// that measured it. A benchmark that fails is reported as failed and the run
// exits 1, but the others still run. A missed target is a verdict in the
// report, not a failure of the run.
import { spawnSync } from "node:child_process";
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { runBenchChild } from "./report-child.js";
import { renderMarkdown } from "./report-render.js";
import { type BenchReport, type BenchResult, benchResult, carryOver, countTargets } from "./report-result.js";
import { BENCHES } from "./report-specs.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
/** Generous bounds so a hung benchmark cannot hang the run; not expected durations. */
const TIMEOUT_MS = { full: 20 * 60_000, quick: 3 * 60_000 };

const USAGE = `usage: npm run bench [-- --quick] [-- --out <dir>] [-- --only <name>[,<name>…]]

Runs ${BENCHES.map((b) => b.script).join(", ")} one after another
and writes REPORT.md and report.json.

  --quick        smoke mode: short windows, few repetitions (what npm test runs);
                 writes to a new temporary folder unless --out is given
  --out <dir>    write the report there instead (default: bench/ for a full run)
  --only <names> run only these (${BENCHES.map((b) => b.name).join(", ")}); the others' figures
                 are carried over from the report.json already there, marked as such
  --help         this text`;

function gitState(): { commit: string; uncommittedChanges: boolean } {
  const head = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" });
  if (head.status !== 0) return { commit: "unknown", uncommittedChanges: false };
  const status = spawnSync("git", ["status", "--porcelain", "--untracked-files=no"], {
    cwd: ROOT,
    encoding: "utf8",
  });
  return { commit: head.stdout.trim(), uncommittedChanges: status.stdout.trim() !== "" };
}

/** The report already at `path`, if there is one that parses. */
async function previousReport(path: string): Promise<BenchReport | undefined> {
  try {
    return JSON.parse(await readFile(path, "utf8")) as BenchReport;
  } catch {
    return undefined;
  }
}

/** Writes `text` to `path` through a rename, so a reader never sees half a report. */
async function writeAtomically(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

async function main(): Promise<number> {
  let opts: { quick: boolean; out: string | undefined; help: boolean; only: string[] | undefined };
  try {
    const { values } = parseArgs({
      options: {
        quick: { type: "boolean" },
        out: { type: "string" },
        help: { type: "boolean" },
        only: { type: "string", multiple: true },
      },
      strict: true,
      allowPositionals: false,
    });
    const only = values.only?.flatMap((v) => v.split(",")).filter((v) => v !== "");
    const unknown = only?.filter((name) => !BENCHES.some((b) => b.name === name)) ?? [];
    if (unknown.length > 0) throw new Error(`--only: no benchmark named ${unknown.join(", ")}`);
    opts = { quick: values.quick === true, out: values.out, help: values.help === true, only };
  } catch (err) {
    console.error(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (opts.help) {
    console.log(USAGE);
    return 0;
  }
  const outDir =
    opts.out !== undefined
      ? resolve(opts.out)
      : opts.quick
        ? await mkdtemp(join(tmpdir(), "tensorclaw-bench-"))
        : join(ROOT, "bench");
  await mkdir(outDir, { recursive: true });
  const scratch = await mkdtemp(join(tmpdir(), "tensorclaw-bench-json-"));
  const timeoutMs = opts.quick ? TIMEOUT_MS.quick : TIMEOUT_MS.full;

  // Ctrl-C / SIGTERM: stop the running benchmark (its whole process group) and write nothing.
  let stopRunning: ((signal: NodeJS.Signals) => void) | undefined;
  let interrupted: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted = signal;
    stopRunning?.("SIGTERM");
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  const git = gitState();
  const loadStart = loadavg()[0] ?? 0;
  const generatedAt = new Date().toISOString();
  const results: BenchResult[] = [];
  try {
    for (const spec of BENCHES) {
      if (interrupted !== undefined) break;
      if (opts.only !== undefined && !opts.only.includes(spec.name)) continue;
      const jsonFile = join(scratch, `${spec.name}.json`);
      const args = opts.quick ? ["--quick"] : [];
      const command = ["node --import ./bin/register.mjs", spec.script, ...args, "--json <file>"].join(" ");
      console.log(`\n=== ${spec.name}: ${command}`);
      const outcome = await runBenchChild({
        cwd: ROOT,
        script: spec.script,
        args,
        jsonFile,
        timeoutMs,
        onRunning: (kill) => {
          stopRunning = kill;
        },
      });
      const result = benchResult(spec, command, outcome, timeoutMs);
      results.push(result);
      console.log(
        `=== ${spec.name}: ${result.status === "ok" ? "ok" : `FAILED (${result.failure ?? ""})`} in ${(result.durationMs / 1000).toFixed(1)} s`,
      );
    }
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
  if (interrupted !== undefined) {
    console.error(`\ninterrupted by ${interrupted}: no report written`);
    return 130;
  }

  const benchmarks =
    opts.only === undefined
      ? results
      : carryOver(
          results,
          await previousReport(join(outDir, "report.json")),
          opts.quick,
          BENCHES.map((b) => b.name),
        );
  const cpuList = cpus();
  const report: BenchReport = {
    generatedAt,
    quick: opts.quick,
    ...(opts.only === undefined ? {} : { only: opts.only }),
    ...git,
    machine: {
      cpus: cpuList.length,
      cpuModel: cpuList[0]?.model.trim() ?? "unknown",
      node: process.version,
      platform: `${process.platform} ${process.arch}`,
      totalMemoryBytes: totalmem(),
      loadAverage1m: { start: loadStart, end: loadavg()[0] ?? 0 },
    },
    ok: benchmarks.every((r) => r.status === "ok"),
    targets: countTargets(benchmarks),
    benchmarks,
  };
  const markdown = renderMarkdown(report);
  await writeAtomically(join(outDir, "report.json"), `${JSON.stringify(report, null, 2)}\n`);
  await writeAtomically(join(outDir, "REPORT.md"), markdown);
  console.log(`\n${markdown}`);
  console.log(`report written to ${join(outDir, "REPORT.md")} and ${join(outDir, "report.json")}`);
  if (!report.ok)
    console.error(
      `failed: ${benchmarks
        .filter((r) => r.status === "failed")
        .map((r) => r.name)
        .join(", ")}`,
    );
  return report.ok ? 0 : 1;
}

process.exitCode = await main();
