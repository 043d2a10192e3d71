/**
 * Long-running `tensorclaw` programs as real child processes, for the
 * whole-loop tests: output captured, conditions on the output awaited (never
 * slept for), and every child killed by the owning {@link ProcessSet}.
 */
import { type ChildProcess, spawn } from "node:child_process";

import { readdirSync, readFileSync } from "node:fs";
import { CLI } from "./cli.js";

/** One running `tensorclaw <args>` child. */
export class CliProcess {
  readonly child: ChildProcess;
  #stdout = "";
  #stderr = "";
  readonly #exited: Promise<number | null>;

  constructor(
    readonly label: string,
    args: readonly string[],
    env: Record<string, string | undefined>,
  ) {
    this.child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (d: Buffer) => {
      this.#stdout += d.toString();
    });
    this.child.stderr?.on("data", (d: Buffer) => {
      this.#stderr += d.toString();
    });
    this.#exited = new Promise((resolve) => {
      this.child.once("exit", (code) => resolve(code));
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }
  get stdout(): string {
    return this.#stdout;
  }
  get stderr(): string {
    return this.#stderr;
  }
  /** True while the process has not exited. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  /** Exit code (null when a signal ended it). */
  exited(): Promise<number | null> {
    return this.#exited;
  }

  /**
   * Resolves with the first match of `pattern` on stdout or stderr (searched
   * again on every new chunk); rejects when the process exits first or
   * `timeoutMs` passes, quoting the output so a failure explains itself.
   */
  waitFor(
    pattern: RegExp,
    timeoutMs: number,
    stream: "stdout" | "stderr" | "any" = "any",
  ): Promise<RegExpExecArray> {
    const text = () =>
      stream === "stdout" ? this.#stdout : stream === "stderr" ? this.#stderr : this.#stdout + this.#stderr;
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.child.stdout?.off("data", check);
        this.child.stderr?.off("data", check);
        this.child.off("exit", onExit);
      };
      const check = () => {
        // Let this class's own listener append the chunk first.
        queueMicrotask(() => {
          const m = pattern.exec(text());
          if (m !== null) {
            cleanup();
            resolve(m);
          }
        });
      };
      const onExit = (code: number | null) => {
        cleanup();
        reject(new Error(`${this.label} exited (${code}) before ${pattern}:\n${this.tail()}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${this.label}: no ${pattern} within ${timeoutMs} ms:\n${this.tail()}`));
      }, timeoutMs);
      this.child.stdout?.on("data", check);
      this.child.stderr?.on("data", check);
      this.child.once("exit", onExit);
      if (!this.running) onExit(this.child.exitCode);
      else check();
    });
  }

  /** The last lines of both streams, for failure messages. */
  tail(lines = 15): string {
    const last = (s: string) => s.split("\n").slice(-lines).join("\n");
    return `--- stdout\n${last(this.#stdout)}\n--- stderr\n${last(this.#stderr)}`;
  }

  /** Sends `signal` and waits for the exit (no-op when already gone). */
  async stop(signal: NodeJS.Signals = "SIGKILL"): Promise<number | null> {
    if (this.running) this.child.kill(signal);
    return this.#exited;
  }
}

/** Every child a test started, so an after hook can kill them all. */
export class ProcessSet {
  readonly #all = new Set<CliProcess>();

  /** Spawns `tensorclaw <args>` and tracks it. */
  spawn(label: string, args: readonly string[], env: Record<string, string | undefined> = {}): CliProcess {
    const p = new CliProcess(label, args, env);
    this.#all.add(p);
    void p.exited().then(() => this.#all.delete(p));
    return p;
  }

  /**
   * SIGKILLs every child still running and everything it started (a killed
   * `tensorclaw dev` cannot stop its own children), and waits for each exit.
   */
  async killAll(): Promise<void> {
    const grandchildren = [...this.#all].flatMap((p) => (p.running ? descendantPids(p.pid) : []));
    await Promise.all([...this.#all].map((p) => p.stop("SIGKILL")));
    for (const pid of grandchildren) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
}

/** Pids of every living descendant of `pid` (Linux: read from /proc). */
export function descendantPids(pid: number): number[] {
  const parentOf = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      // The command name may hold spaces and parentheses: fields start after the last ")".
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (fields[0] !== "Z") parentOf.set(Number(name), Number(fields[1]));
    } catch {
      // The process ended while we looked.
    }
  }
  const out: number[] = [];
  const frontier = [pid];
  while (frontier.length > 0) {
    const p = frontier.pop() as number;
    for (const [child, parent] of parentOf) {
      if (parent === p) {
        out.push(child);
        frontier.push(child);
      }
    }
  }
  return out;
}

/** True when a process with this pid is alive (not a zombie). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}
