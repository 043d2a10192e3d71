// bench/REPORT.md: the human table. Pure: everything it shows comes from the
// report object, so the Markdown and bench/report.json always agree.
import type { BenchReport, BenchResult, JudgedRow } from "./report-result.js";
import type { PeerFigure, Target } from "./report-specs.js";

/** A figure with as many decimals as its size deserves, thousands separated. */
export function formatNumber(v: number): string {
  const abs = Math.abs(v);
  const digits = Number.isInteger(v) || abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3;
  return v.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: 0 });
}

const withUnit = (v: number, unit: string): string =>
  unit === "" ? formatNumber(v) : `${formatNumber(v)} ${unit}`;

const OPS: Record<Target["op"], string> = { ">=": "≥", "<=": "≤", "=": "=" };

function targetCell(row: JudgedRow): string {
  return row.target === undefined ? "" : `${OPS[row.target.op]} ${withUnit(row.target.value, row.unit)}`;
}

function peerCell(peers: readonly PeerFigure[]): string {
  return peers.map((p) => `${p.label}: ${withUnit(p.value, p.unit)}`).join("; ");
}

function verdict(row: JudgedRow): string {
  if (row.pass === undefined) return "";
  return row.pass ? "pass" : "**FAIL**";
}

const cell = (s: string): string => s.replaceAll("|", "\\|").replaceAll("\n", " ");

/** Column alignment: figures and targets read best right-aligned. */
const ALIGN = ["left", "left", "right", "right", "left", "left"] as const;
const HEADER = ["benchmark", "measure", "result", "target", "peer / baseline (same run)", "verdict"];

/** A Markdown table padded to aligned columns, so the raw file reads as a table too. */
function tableLines(results: readonly BenchResult[]): string[] {
  const body: string[][] = [];
  for (const r of results) {
    if (r.rows.length === 0)
      body.push([r.name, "(no figures)", "", "", "", `**FAILED**: ${r.failure ?? ""}`]);
    for (const row of r.rows)
      body.push([
        r.name,
        row.measure,
        withUnit(row.value, row.unit),
        targetCell(row),
        peerCell(row.peers),
        verdict(row),
      ]);
  }
  const rows = [HEADER, ...body].map((cells) => cells.map(cell));
  const widths = HEADER.map((_, i) => Math.max(3, ...rows.map((c) => (c[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    `| ${cells
      .map((c, i) => (ALIGN[i] === "right" ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
      .join(" | ")} |`;
  const rule = `| ${widths.map((w, i) => (ALIGN[i] === "right" ? `${"-".repeat(w - 1)}:` : "-".repeat(w))).join(" | ")} |`;
  const [head, ...rest] = rows;
  return [line(head ?? HEADER), rule, ...rest.map(line)];
}

const when = (iso: string): string => iso.replace("T", " ").replace(/\.\d+Z$/, " UTC");

function benchLines(r: BenchResult): string[] {
  const status = r.status === "ok" ? "ok" : `**FAILED**: ${r.failure ?? ""}`;
  const from =
    r.from === undefined
      ? ""
      : `; carried over from the run of ${when(r.from.generatedAt)} at commit ${r.from.commit}`;
  const lines = [
    `- **${r.name}** (${r.summary}): ${status}; ${formatNumber(r.durationMs / 1000)} s; \`${r.command}\`${from}`,
  ];
  for (const n of r.notes) lines.push(`  - note: ${n}`);
  if (r.status === "failed" && r.stderrTail !== undefined && r.stderrTail !== "") {
    lines.push("", "  ```text", ...r.stderrTail.split("\n").map((l) => `  ${l}`), "  ```", "");
  }
  return lines;
}

/** One line on what the table is, where and when it was measured. */
export function machineLine(report: BenchReport): string {
  const m = report.machine;
  const gib = (m.totalMemoryBytes / 2 ** 30).toFixed(1);
  return (
    `${m.cpus} CPUs (${m.cpuModel}), ${gib} GiB RAM, Node ${m.node} on ${m.platform}; ` +
    `1-minute load average ${m.loadAverage1m.start.toFixed(2)} at the start, ${m.loadAverage1m.end.toFixed(2)} at the end`
  );
}

function carriedOverNote(report: BenchReport): string[] {
  const carried = report.benchmarks.filter((b) => b.from !== undefined);
  if (carried.length === 0) return [];
  const ran = report.benchmarks.filter((b) => b.from === undefined).map((b) => b.name);
  return [
    "",
    `This run measured ${ran.length === 0 ? "nothing" : ran.join(", ")} (\`--only\`); the figures of ` +
      `${carried.map((b) => b.name).join(", ")} are carried over from earlier runs, as noted under Benchmarks ` +
      "(the machine line describes this run).",
  ];
}

/** The whole of bench/REPORT.md. */
export function renderMarkdown(report: BenchReport): string {
  const commit = report.uncommittedChanges ? `${report.commit} (with uncommitted changes)` : report.commit;
  const ran = report.benchmarks.filter((b) => b.status === "ok").length;
  const t = report.targets;
  const lines = [
    "# TensorClaw benchmark report",
    "",
    `Written by \`npm run bench${report.quick ? " -- --quick" : ""}${report.only === undefined ? "" : ` -- --only ${report.only.join(",")}`}\` (${report.quick ? "quick smoke run: short windows, fewer repetitions, figures indicative only" : "full run"}) ` +
      `on ${when(report.generatedAt)}, at commit ${commit}.`,
    ...carriedOverNote(report),
    "",
    `Machine: ${machineLine(report)}.`,
    "",
    "Each figure is the median over the repetitions its benchmark makes; each peer or baseline was measured " +
      "by the same benchmark in the same run on the same machine. The machine is shared and noisy, so " +
      "compare a figure with its peer rather than with another run. Regenerate with `npm run bench`.",
    "",
    `**Summary:** ${ran} of ${report.benchmarks.length} benchmarks ran cleanly; ${t.met} of ${t.met + t.missed} targets met.`,
    "",
    ...tableLines(report.benchmarks),
    "",
    "## Benchmarks",
    "",
    ...report.benchmarks.flatMap(benchLines),
    "",
    "Every benchmark's own JSON is kept under `raw` in `report.json`.",
    "",
  ];
  return lines.join("\n");
}
