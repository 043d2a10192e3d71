import type { MinerScore } from "./scoring.js";
import type { WeightVector } from "./weights.js";

/** One printed row: a miner's score with its uid and weight (if registered). */
export interface ScoreRow {
  readonly score: MinerScore;
  readonly uid: number | undefined;
  /** u16 weight that would be set (0 when none). */
  readonly weight: number;
}

/** Joins scores with uids and the weight vector, best final score first. */
export function scoreRows(
  scores: readonly MinerScore[],
  hotkeyToUid: ReadonlyMap<string, number>,
  weights: WeightVector,
): ScoreRow[] {
  const byUid = new Map<number, number>();
  weights.uids.forEach((uid, i) => {
    byUid.set(uid, weights.values[i] ?? 0);
  });
  return scores
    .map((score) => {
      const uid = hotkeyToUid.get(score.hotkey);
      return { score, uid, weight: uid === undefined ? 0 : (byUid.get(uid) ?? 0) };
    })
    .sort(
      (a, b) =>
        b.score.final - a.score.final ||
        (a.score.hotkey < b.score.hotkey ? -1 : a.score.hotkey > b.score.hotkey ? 1 : 0),
    );
}

const HEADERS = [
  "uid",
  "hotkey",
  "avail",
  "probe",
  "latency tier",
  "uptime %",
  "tokens 24h",
  "business",
  "final",
  "weight",
  "audit failed",
] as const;

/** Failed models named in a row before the rest is only counted. */
const FAILED_NAMED = 2;

/**
 * The failed models in one cell: "-" for none, else up to FAILED_NAMED
 * names and "+N" for the rest. Whitespace in a model id (miner-supplied
 * data) becomes "_", so the cell stays one word and the table parseable.
 */
export function failedCell(models: readonly string[]): string {
  if (models.length === 0) return "-";
  const named = models.slice(0, FAILED_NAMED).map((m) => m.replace(/\s+/g, "_"));
  const rest = models.length - named.length;
  return rest > 0 ? `${named.join(",")},+${rest}` : named.join(",");
}

function fixed(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : "-";
}

/** Renders rows as an aligned text table (numbers right-aligned). */
export function formatScoreTable(rows: readonly ScoreRow[]): string {
  const body = rows.map((r) => [
    r.uid === undefined ? "-" : String(r.uid),
    r.score.hotkey,
    r.score.availability > 0 ? "yes" : "no",
    r.score.ghost ? "ghost" : r.score.probe > 0 ? "pass" : "none",
    fixed(r.score.latencyTier, 0),
    fixed(r.score.uptime),
    String(r.score.tokens),
    fixed(r.score.business, 2),
    fixed(r.score.final, 2),
    String(r.weight),
    failedCell(r.score.failedModels),
  ]);
  const all = [[...HEADERS], ...body];
  const widths = HEADERS.map((_, c) => Math.max(...all.map((row) => (row[c] ?? "").length)));
  const leftAligned = new Set([1, 2, 3, 10]);
  const line = (row: readonly string[]) =>
    row
      .map((cell, c) => (leftAligned.has(c) ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0)))
      .join("  ")
      .trimEnd();
  const out = [line(all[0] ?? []), widths.map((w) => "-".repeat(w)).join("  ")];
  for (const row of body) out.push(line(row));
  if (body.length === 0) out.push("(no miners)");
  return `${out.join("\n")}\n`;
}
