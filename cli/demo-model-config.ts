// Settings of `tensorclaw demo-model`, apart from the command so that its main can
// read the type without importing the command (no cycle).
import { type OptionSpecs, type ParsedCommand, parseCommand } from "../common/config.js";
import { TensorClawError } from "../common/errors.js";

/** Settings of `tensorclaw demo-model`. */
export interface DemoModelConfig {
  host: string;
  port: number;
  tokenDelayMs: number;
}

/** Defaults, in one place (port 8000: where vLLM listens by default). */
export const DEMO_MODEL_DEFAULTS: DemoModelConfig = {
  host: "127.0.0.1",
  port: 8000,
  tokenDelayMs: 0,
};

/** Flags and environment variables of `tensorclaw demo-model`. */
export const DEMO_MODEL_OPTIONS: OptionSpecs<DemoModelConfig> = {
  host: {
    flag: "host",
    kind: "string",
    env: "TENSORCLAW_DEMO_MODEL_HOST",
    description: "Address to listen on.",
  },
  port: {
    flag: "port",
    kind: "int",
    min: 0,
    max: 65535,
    env: "TENSORCLAW_DEMO_MODEL_PORT",
    description: "Port to listen on (0: any free port).",
  },
  tokenDelayMs: {
    flag: "token-delay-ms",
    kind: "int",
    min: 0,
    max: 60_000,
    env: "TENSORCLAW_DEMO_MODEL_TOKEN_DELAY_MS",
    description: "Delay between streamed tokens, in ms.",
  },
};

/** Parses `tensorclaw demo-model` arguments (no positionals). */
export function parseDemoModelCommand(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ParsedCommand<DemoModelConfig> {
  const parsed = parseCommand(DEMO_MODEL_OPTIONS, DEMO_MODEL_DEFAULTS, argv, env);
  const [extra] = parsed.positionals;
  if (extra !== undefined)
    throw new TensorClawError("config_invalid", `unexpected argument ${JSON.stringify(extra)}`);
  return parsed;
}
