import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The `tensorclaw` launcher, for spawning the programs as real processes. */
const CLI = fileURLToPath(new URL("../bin/tensorclaw.js", import.meta.url));

/** One program the supervisor runs. */
export interface ChildSpec {
  /** Short label used as the prefix of its log lines. */
  readonly label: string;
  readonly args: readonly string[];
  readonly env?: Readonly<Record<string, string>>;
  /** Forward its stdout verbatim (score tables) instead of prefixed. */
  readonly rawStdout?: boolean;
  /** A command expected to finish (its exit is not a failure of the network). */
  readonly oneShot?: boolean;
}

/** How the supervisor reports. */
export interface SupervisorOutput {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

/**
 * Runs `tensorclaw` subcommands as child processes in one process tree,
 * prefixes their output, notices when one dies, and stops them all (SIGTERM,
 * then SIGKILL after a grace period).
 */
export class DevSupervisor {
  readonly #children = new Map<string, ChildProcess>();
  readonly #output: SupervisorOutput;
  readonly #tails = new Map<string, string[]>();
  #stopping = false;
  #onUnexpectedExit: (label: string, code: number | null, tail: readonly string[]) => void = () => {};

  constructor(output: SupervisorOutput) {
    this.#output = output;
  }

  /** Called when a child exits while the supervisor is not stopping. */
  onUnexpectedExit(handler: (label: string, code: number | null, tail: readonly string[]) => void): void {
    this.#onUnexpectedExit = handler;
  }

  /** Starts a child. */
  start(spec: ChildSpec): ChildProcess {
    const child = spawn(process.execPath, [CLI, ...spec.args], {
      env: { ...process.env, ...spec.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.#children.set(spec.label, child);
    this.#tails.set(spec.label, []);
    // A one-shot command's stdout is its result, read by the caller.
    if (spec.oneShot !== true) {
      this.#pipe(spec.label, child.stdout, spec.rawStdout === true ? this.#output.out : undefined);
    }
    this.#pipe(spec.label, child.stderr, undefined);
    child.once("exit", (code) => {
      this.#children.delete(spec.label);
      if (!this.#stopping && spec.oneShot !== true)
        this.#onUnexpectedExit(spec.label, code, this.#tails.get(spec.label) ?? []);
    });
    return child;
  }

  #pipe(label: string, stream: NodeJS.ReadableStream | null, raw: ((t: string) => void) | undefined): void {
    if (stream === null) return;
    let pending = "";
    stream.setEncoding("utf8");
    stream.on("data", (data: string) => {
      pending += data;
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const line of lines) {
        const tail = this.#tails.get(label);
        if (tail !== undefined) {
          tail.push(line);
          if (tail.length > 20) tail.shift();
        }
        if (raw !== undefined) raw(`${line}\n`);
        else this.#output.err(`[${label}] ${line}\n`);
      }
    });
  }

  /** Labels of the children still running. */
  running(): string[] {
    return [...this.#children.keys()];
  }

  /** Stops every child: SIGTERM, then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    this.#stopping = true;
    const waits = [...this.#children.values()].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
          child.once("exit", () => {
            clearTimeout(timer);
            resolve();
          });
          child.kill("SIGTERM");
        }),
    );
    await Promise.all(waits);
  }
}
