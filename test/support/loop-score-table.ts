/**
 * Reads back the score tables a dry-run validator prints on stdout (see
 * validator/score-table.ts), so a test can check what an operator sees.
 */

/** One printed row. */
export interface PrintedScore {
  readonly uid: string;
  readonly hotkey: string;
  readonly avail: string;
  /** "pass", "ghost" or "none". */
  readonly probe: string;
  readonly latencyTier: number;
  readonly uptime: number;
  readonly tokens: number;
  readonly business: number;
  readonly final: number;
  readonly weight: number;
  /** The "audit failed" cell: "-", or failed model ids (see validator/score-table.ts failedCell). */
  readonly auditFailed: string;
}

/** Every complete table in `stdout`, oldest first (a table ends at its first non-row line). */
export function printedTables(stdout: string): PrintedScore[][] {
  const tables: PrintedScore[][] = [];
  const lines = stdout.split("\n");
  for (let i = 0; i < lines.length; i++) {
    if (!/^uid\s+hotkey\s+avail/.test(lines[i] ?? "")) continue;
    const rows: PrintedScore[] = [];
    let j = i + 2;
    for (; j < lines.length; j++) {
      const cells = (lines[j] ?? "").trim().split(/\s+/);
      if (cells.length !== 11) break;
      const [uid, hotkey, avail, probe, ...rest] = cells as [string, string, string, string, ...string[]];
      const auditFailed = rest.pop() as string;
      const [latencyTier, uptime, tokens, business, final, weight] = rest.map(Number) as [
        number,
        number,
        number,
        number,
        number,
        number,
      ];
      rows.push({
        uid,
        hotkey,
        avail,
        probe,
        latencyTier,
        uptime,
        tokens,
        business,
        final,
        weight,
        auditFailed,
      });
    }
    // The last table may still be arriving: only one followed by another line is complete.
    if (j < lines.length - 1) tables.push(rows);
    i = j;
  }
  return tables;
}

/** The newest complete table, or undefined when none is printed yet. */
export function lastPrintedTable(stdout: string): PrintedScore[] | undefined {
  return printedTables(stdout).at(-1);
}
