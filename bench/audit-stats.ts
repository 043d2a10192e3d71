// Summary statistics and clocks for the audit benchmark (bench/audit.ts and
// its parts). Medians and high percentiles, because the machine is shared and
// noisy: a mean of wall times would carry every hiccup of a neighbour.
import { readFileSync } from "node:fs";

/** The middle value (the mean of the two middle ones for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** The nearest-rank `p`-th percentile (0 < p <= 100); NaN when empty. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

/** The arithmetic mean; NaN when empty. Used for token counts, whose totals per day are sums. */
export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return Number.NaN;
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/**
 * CPU time (user + system) a process has used so far, in ms, from
 * /proc/<pid>/stat (10 ms ticks: read it around many operations, not one);
 * NaN where /proc is missing.
 */
export function processCpuMs(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, "utf8");
    // After "(comm) ": utime and stime are the 12th and 13th fields.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}
