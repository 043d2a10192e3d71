import type { Command, CommandIO } from "../common/command.js";
import { toTensorClawError } from "../common/errors.js";

/** A subcommand as the top-level help lists it. */
export interface CommandEntry {
  readonly name: string;
  /** One line for the top-level help. */
  readonly summary: string;
  /** Imports the command's module: only the command that runs is loaded (some pull in heavy packages). */
  readonly load: () => Promise<Command>;
}

/** Every subcommand, in help order. */
export const COMMANDS: readonly CommandEntry[] = [
  {
    name: "router",
    summary: "Run the router: OpenAI-compatible API, miner tunnels, usage ledger, validator services.",
    load: async () => (await import("../router/command.js")).routerCommand,
  },
  {
    name: "miner",
    summary: "Run a miner: dial out to routers and serve inference from an OpenAI-compatible backend.",
    load: async () => (await import("../miner/command.js")).minerCommand,
  },
  {
    name: "validator",
    summary: "Run a validator: probe miners, read the usage ledger, score, set weights.",
    load: async () => (await import("../validator/command.js")).validatorCommand,
  },
  {
    name: "dev",
    summary: "Run a local network: a router, demo miners and a dry-run validator.",
    load: async () => (await import("./dev.js")).devCommand,
  },
  {
    name: "demo-model",
    summary: "Serve the demo model over an OpenAI-compatible API (a reference server for validators).",
    load: async () => (await import("./demo-model.js")).demoModelCommand,
  },
  {
    name: "keys",
    summary: "Manage API keys: create (prints the key once), list, revoke.",
    load: async () => (await import("./keys.js")).keysCommand,
  },
];

/** Top-level help. */
export function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 4;
  const rows = COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`);
  return (
    "Usage: tensorclaw <command> [options]\n\n" +
    "TensorClaw (Bittensor SN92): a decentralised OpenAI-compatible LLM API marketplace.\n\n" +
    `Commands:\n${rows.join("\n")}\n\n` +
    "Run `tensorclaw <command> --help` for a command's options.\n"
  );
}

/** Runs the CLI; resolves to the process exit code. */
export async function main(argv: readonly string[], io: CommandIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout(topHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    io.stdout("tensorclaw 0.1.0\n");
    return 0;
  }
  const entry = COMMANDS.find((c) => c.name === name);
  if (entry === undefined) {
    io.stderr(`tensorclaw: unknown command ${JSON.stringify(name)}\n\n${topHelp()}`);
    return 2;
  }
  try {
    return await (await entry.load()).run(rest, io);
  } catch (err) {
    const e = toTensorClawError(err);
    io.stderr(`tensorclaw ${name}: ${e.message}\n`);
    if (e.code === "internal" && e.cause !== undefined)
      io.stderr(`${String((e.cause as Error)?.stack ?? e.cause)}\n`);
    return 1;
  }
}
