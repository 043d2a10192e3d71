import { formatHelp, type OptionSpecs, type ParsedCommand } from "./config.js";
import { TensorClawError } from "./errors.js";

/** What a command may touch of the outside world. */
export interface CommandIO {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** One `tensorclaw <name>` subcommand (the top-level help's summary of it lives in cli/main.ts). */
export interface Command {
  readonly name: string;
  /** Runs the command with the arguments after its name; resolves to the exit code. */
  run(argv: readonly string[], io: CommandIO): Promise<number>;
}

/** Describes a command built from option specs. */
export interface CommandSpec<T> {
  readonly name: string;
  readonly usage: string;
  /** Longer text shown under the usage line. */
  readonly description: string;
  readonly options: OptionSpecs<T>;
  readonly defaults: T;
  readonly parse: (
    argv: readonly string[],
    env: Readonly<Record<string, string | undefined>>,
  ) => ParsedCommand<T>;
  /** Runs with a validated config; resolves to the exit code. */
  readonly main: (parsed: ParsedCommand<T>, io: CommandIO) => Promise<number>;
}

/** Help text of a command spec. */
export function commandHelp<T>(spec: CommandSpec<T>): string {
  return formatHelp(spec.usage, spec.description, spec.options, spec.defaults);
}

/**
 * Wraps a spec into a Command: `--help` prints the help, configuration errors
 * print one line naming the setting and exit 2.
 */
export function defineCommand<T>(spec: CommandSpec<T>): Command {
  return {
    name: spec.name,
    async run(argv, io) {
      // Help must work even when the environment holds a bad value.
      if (argv.includes("--help") || argv.includes("-h")) {
        io.stdout(commandHelp(spec));
        return 0;
      }
      let parsed: ParsedCommand<T>;
      try {
        parsed = spec.parse(argv, io.env);
      } catch (err) {
        if (err instanceof TensorClawError && err.code === "config_invalid") {
          io.stderr(`tensorclaw ${spec.name}: ${err.message}\n`);
          return 2;
        }
        throw err;
      }
      return spec.main(parsed, io);
    },
  };
}
