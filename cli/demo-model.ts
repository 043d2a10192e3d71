import { defineCommand } from "../common/command.js";
import { DEMO_MODEL_DEFAULTS, DEMO_MODEL_OPTIONS, parseDemoModelCommand } from "./demo-model-config.js";

/** `tensorclaw demo-model`: the demo model as an OpenAI-compatible server. */
export const demoModelCommand = defineCommand({
  name: "demo-model",
  usage: "tensorclaw demo-model [--port <n>] [--host <address>] [options]",
  description:
    'Serves the demo model "tensorclaw-demo" (a tiny n-gram model, not a real LLM) over an OpenAI-compatible\n' +
    "HTTP API: /v1/models, /v1/chat/completions (streaming, logprobs), /v1/completions (echo, logprobs) and\n" +
    'vLLM\'s /tokenize; also /v1/embeddings of the demo embedding model "tensorclaw-demo-embed". Validators\n' +
    "use it as the reference server of both (--reference); a miner may use it as its --backend.",
  options: DEMO_MODEL_OPTIONS,
  defaults: DEMO_MODEL_DEFAULTS,
  parse: parseDemoModelCommand,
  // Loaded only now: help and settings need neither the tokenizer nor the server.
  main: async (parsed, io) => (await import("./demo-model-main.js")).demoModelMain(parsed, io),
});
