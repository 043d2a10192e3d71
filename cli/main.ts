import type { Command, CommandIO } from "../common/command.js";
import { toTensorClawError } from "../common/errors.js";
import { minerCommand } from "../miner/command.js";
import { routerCommand } from "../router/command.js";
import { validatorCommand } from "../validator/command.js";
import { devCommand } from "./dev.js";
import { keysCommand } from "./keys.js";

/** Every subcommand, in help order. */
export const COMMANDS: readonly Command[] = [
  routerCommand,
  minerCommand,
  validatorCommand,
  devCommand,
  keysCommand,
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
  const cmd = COMMANDS.find((c) => c.name === name);
  if (cmd === undefined) {
    io.stderr(`tensorclaw: unknown command ${JSON.stringify(name)}\n\n${topHelp()}`);
    return 2;
  }
  try {
    return await cmd.run(rest, io);
  } catch (err) {
    const e = toTensorClawError(err);
    io.stderr(`tensorclaw ${name}: ${e.message}\n`);
    if (e.code === "internal" && e.cause !== undefined)
      io.stderr(`${String((e.cause as Error)?.stack ?? e.cause)}\n`);
    return 1;
  }
}
