// Runs one benchmark script as a child process and collects its `--json`
// output. The child gets its own process group so that a timeout or a
// Ctrl-C also reaches the helper processes it started itself.
import { spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";

/** `node --import` this to run TypeScript sources (see bin/loader.mjs). */
const TS_LOADER = new URL("../bin/register.mjs", import.meta.url).href;

/** How one benchmark process ended. */
export interface ChildOutcome {
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly durationMs: number;
  readonly timedOut: boolean;
  /** Command lines of processes of its group still running after it exited (they were killed). */
  readonly leftovers: readonly string[];
  /** The parsed JSON file, when the child wrote one that parses. */
  readonly json?: unknown;
  /** Why there is no JSON (missing file, bad JSON). */
  readonly jsonError?: string;
  /** The last lines the child wrote to stderr, for the report when it failed. */
  readonly stderrTail: string;
}

/** What to run and where its JSON goes. */
export interface ChildRun {
  readonly cwd: string;
  readonly script: string;
  readonly args: readonly string[];
  readonly jsonFile: string;
  readonly timeoutMs: number;
  /** Keep the child's output to ourselves (tests); by default it is shown as it comes. */
  readonly quiet?: boolean;
  /** Called with the child's pid-group killer while it runs, and with undefined after. */
  readonly onRunning?: (kill: ((signal: NodeJS.Signals) => void) | undefined) => void;
}

const TAIL_BYTES = 2_000;
const CMDLINE_CHARS = 160;
/** Time a child gets to clean up after SIGTERM before SIGKILL. */
const TERM_GRACE_MS = 5_000;

/**
 * Runs `node --import ./bin/register.mjs <script> <args> --json <jsonFile>`; the child's
 * stdout goes to ours (its table is worth seeing), its stderr too, with a
 * tail kept for the report.
 */
export async function runBenchChild(run: ChildRun): Promise<ChildOutcome> {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    ["--import", TS_LOADER, run.script, ...run.args, "--json", run.jsonFile],
    {
      cwd: run.cwd,
      stdio: ["ignore", run.quiet === true ? "ignore" : "inherit", "pipe"],
      detached: true,
    },
  );
  /** Signals the child's process group; false when nothing is left in it. */
  const killGroup = (signal: NodeJS.Signals | 0): boolean => {
    if (child.pid === undefined) return false;
    try {
      process.kill(-child.pid, signal);
      return true;
    } catch {
      return false; // the group is gone
    }
  };
  run.onRunning?.(killGroup);
  let tail = "";
  child.stderr?.on("data", (d: Buffer) => {
    if (run.quiet !== true) process.stderr.write(d);
    tail = (tail + d.toString("utf8")).slice(-TAIL_BYTES);
  });
  let timedOut = false;
  let killTimer: NodeJS.Timeout | undefined;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup("SIGTERM");
    killTimer = setTimeout(() => killGroup("SIGKILL"), TERM_GRACE_MS);
  }, run.timeoutMs);
  const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
    (resolve) => {
      child.once("error", (error) => resolve({ code: null, signal: null, error }));
      child.once("close", (code, signal) => resolve({ code, signal }));
    },
  );
  clearTimeout(timer);
  if (killTimer !== undefined) clearTimeout(killTimer);
  run.onRunning?.(undefined);
  // Helpers the bench left behind would skew the next benchmark: end them, and say which.
  const leftovers =
    child.pid !== undefined && killGroup(0) ? ((await groupMembers(child.pid)) ?? ["(not listed)"]) : [];
  killGroup("SIGKILL");
  const durationMs = performance.now() - t0;
  if (ended.error !== undefined) tail = `${tail}\n${ended.error.message}`.slice(-TAIL_BYTES);

  let json: unknown;
  let jsonError: string | undefined;
  try {
    json = JSON.parse(await readFile(run.jsonFile, "utf8"));
  } catch (err) {
    jsonError =
      (err as NodeJS.ErrnoException).code === "ENOENT"
        ? "wrote no JSON file"
        : `wrote unreadable JSON: ${(err as Error).message}`;
  }
  const base = {
    exitCode: ended.code,
    signal: ended.signal,
    durationMs,
    timedOut,
    leftovers,
    stderrTail: tail.trim(),
  };
  return jsonError === undefined ? { ...base, json } : { ...base, jsonError };
}

/**
 * Command lines of the live processes in process group `pgid`, from /proc;
 * zombies (ended, not yet reaped) do not count. Undefined without /proc.
 */
async function groupMembers(pgid: number): Promise<string[] | undefined> {
  let pids: string[];
  try {
    pids = (await readdir("/proc")).filter((d) => /^\d+$/.test(d));
  } catch {
    return undefined;
  }
  const found: string[] = [];
  for (const pid of pids) {
    try {
      const stat = await readFile(`/proc/${pid}/stat`, "utf8");
      // After "(comm) ": state, ppid, pgrp.
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (Number(fields[2]) !== pgid || fields[0] === "Z") continue;
      const cmd = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0").join(" ").trim();
      found.push(`${pid}: ${cmd.slice(0, CMDLINE_CHARS)}`);
    } catch {
      // It ended while we looked.
    }
  }
  return found;
}
