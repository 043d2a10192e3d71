// What `tensorclaw demo-model` does once its settings are read. Apart from
// cli/demo-model.ts so that `--help` loads neither the tokenizer nor the server.
import type { CommandIO } from "../common/command.js";
import type { ParsedCommand } from "../common/config.js";
import { startDemoModelServer } from "../common/demo-model/server.js";
import { waitForStopSignal } from "../common/signals.js";
import type { DemoModelConfig } from "./demo-model-config.js";

/** Serves until SIGINT/SIGTERM; a second signal exits at once. */
export async function demoModelMain(parsed: ParsedCommand<DemoModelConfig>, io: CommandIO): Promise<number> {
  const cfg = parsed.config;
  const server = await startDemoModelServer({
    host: cfg.host,
    port: cfg.port,
    tokenDelayMs: cfg.tokenDelayMs,
    onInternalError: (err) =>
      io.stderr(`tensorclaw demo-model: internal error: ${String((err as Error)?.stack ?? err)}\n`),
  });
  io.stderr(`tensorclaw demo-model: serving tensorclaw-demo on ${server.url}/v1\n`);
  await waitForStopSignal(() => {
    io.stderr("tensorclaw demo-model: stopping now (second signal)\n");
    process.exit(130);
  });
  await server.close();
  return 0;
}
