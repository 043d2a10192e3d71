// The shape of bench/report.json, and the pure step that turns one finished
// benchmark process into its part of the report (status, rows, pass/fail).
import type { ChildOutcome } from "./report-child.js";
import { type BenchSpec, meets, type ReportRow, ShapeError } from "./report-specs.js";

/** The machine the figures were measured on. */
export interface MachineInfo {
  readonly cpus: number;
  readonly cpuModel: string;
  readonly node: string;
  readonly platform: string;
  readonly totalMemoryBytes: number;
  /** 1-minute load average when the run started and when it ended (the machine is shared). */
  readonly loadAverage1m: { readonly start: number; readonly end: number };
}

/** A report row with its verdict; `pass` is absent when the row has no target. */
export type JudgedRow = ReportRow & { readonly pass?: boolean };

/** One benchmark's part of the report. */
export interface BenchResult {
  readonly name: string;
  readonly summary: string;
  readonly command: string;
  readonly status: "ok" | "failed";
  /** Why the benchmark failed (the process, or its JSON); absent when ok. */
  readonly failure?: string;
  /** Things worth knowing that do not fail the benchmark. */
  readonly notes: readonly string[];
  readonly durationMs: number;
  readonly rows: readonly JudgedRow[];
  /** The benchmark's own JSON, as written. */
  readonly raw?: unknown;
  /** The end of its stderr when it failed. */
  readonly stderrTail?: string;
  /**
   * Set when this result was not measured by the run that wrote the report
   * but carried over from an earlier report (`npm run bench -- --only …`).
   */
  readonly from?: { readonly generatedAt: string; readonly commit: string };
}

/** bench/report.json. */
export interface BenchReport {
  readonly generatedAt: string;
  readonly quick: boolean;
  /** The benchmarks this run measured when `--only` named some (the others are carried over). */
  readonly only?: readonly string[];
  readonly commit: string;
  /** Tracked files differed from the commit when the run started. */
  readonly uncommittedChanges: boolean;
  readonly machine: MachineInfo;
  /** Every benchmark ran and wrote the figures the report reads. */
  readonly ok: boolean;
  readonly targets: { readonly met: number; readonly missed: number };
  readonly benchmarks: readonly BenchResult[];
}

function processFailure(o: ChildOutcome, timeoutMs: number): string | undefined {
  if (o.timedOut) return `did not finish within ${Math.round(timeoutMs / 1000)} s (killed)`;
  if (o.signal !== null) return `killed by ${o.signal}`;
  if (o.exitCode === null) return "could not be started";
  if (o.exitCode !== 0) return `exited with code ${o.exitCode}`;
  return undefined;
}

/**
 * Judges one finished benchmark: failed when the process failed or its JSON
 * is missing or lacks a figure; rows are kept whenever the JSON has them, so a
 * benchmark that exits non-zero on a missed target still shows its figures.
 */
export function benchResult(
  spec: BenchSpec,
  command: string,
  outcome: ChildOutcome,
  timeoutMs: number,
): BenchResult {
  const problems: string[] = [];
  const proc = processFailure(outcome, timeoutMs);
  if (proc !== undefined) problems.push(proc);
  let rows: JudgedRow[] = [];
  if (outcome.jsonError !== undefined) problems.push(outcome.jsonError);
  else {
    try {
      rows = spec
        .rows(outcome.json)
        .map((r) => (r.target === undefined ? r : { ...r, pass: meets(r.value, r.target) }));
    } catch (err) {
      if (!(err instanceof ShapeError)) throw err;
      problems.push(`its JSON does not have the figures the report reads: ${err.message}`);
    }
  }
  const notes = [
    ...(spec.notes ?? []),
    ...outcome.leftovers.map((p) => `left a helper process running after it exited (killed): ${p}`),
  ];
  const base = {
    name: spec.name,
    summary: spec.summary,
    command,
    notes,
    durationMs: outcome.durationMs,
    rows,
    ...(outcome.jsonError === undefined ? { raw: outcome.json } : {}),
  };
  if (problems.length === 0) return { ...base, status: "ok" };
  return { ...base, status: "failed", failure: problems.join("; "), stderrTail: outcome.stderrTail };
}

/**
 * The results of a run that measured only some benchmarks, completed with
 * the other benchmarks' results from the previous report, in `order`. A
 * carried-over result says which run measured it; results of a previous
 * report of the other kind (quick against full) are not carried over.
 */
export function carryOver(
  fresh: readonly BenchResult[],
  previous: BenchReport | undefined,
  quick: boolean,
  order: readonly string[],
): BenchResult[] {
  const byName = new Map<string, BenchResult>();
  if (previous !== undefined && previous.quick === quick)
    for (const r of previous.benchmarks)
      byName.set(
        r.name,
        r.from === undefined
          ? { ...r, from: { generatedAt: previous.generatedAt, commit: previous.commit } }
          : r,
      );
  for (const r of fresh) byName.set(r.name, r);
  return order.flatMap((name) => byName.get(name) ?? []);
}

/** Counts of rows with a target that met it and that missed it. */
export function countTargets(results: readonly BenchResult[]): { met: number; missed: number } {
  let met = 0;
  let missed = 0;
  for (const r of results)
    for (const row of r.rows) {
      if (row.pass === true) met++;
      else if (row.pass === false) missed++;
    }
  return { met, missed };
}
