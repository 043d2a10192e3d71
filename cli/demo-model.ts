import { defineCommand } from "../common/command.js";
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

/** `tensorclaw demo-model`: the demo model as an OpenAI-compatible server. */
export const demoModelCommand = defineCommand({
  name: "demo-model",
  usage: "tensorclaw demo-model [--port <n>] [--host <address>] [options]",
  description:
    'Serves the demo model "tensorclaw-demo" (a tiny n-gram model, not a real LLM) over an OpenAI-compatible\n' +
    "HTTP API: /v1/models, /v1/chat/completions (streaming, logprobs), /v1/completions (echo, logprobs) and\n" +
    "vLLM's /tokenize. Validators use it as the reference server of tensorclaw-demo (--reference); a miner\n" +
    "may use it as its --backend.",
  options: DEMO_MODEL_OPTIONS,
  defaults: DEMO_MODEL_DEFAULTS,
  parse: parseDemoModelCommand,
  // Loaded only now: help and settings need neither the tokenizer nor the server.
  main: async (parsed, io) => (await import("./demo-model-main.js")).demoModelMain(parsed, io),
});
