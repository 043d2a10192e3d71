// What `tensorclaw router` does once its settings are read. Apart from
// router/command.ts (help and settings), so that `router --help` and
// `router tiers` load none of the servers.
import type { CommandIO } from "../common/command.js";
import type { ParsedCommand } from "../common/config.js";
import { createLogger } from "../common/logger.js";
import { waitForStopSignal } from "../common/signals.js";
import type { RouterConfig } from "./config.js";
import { tuneRouterHeap } from "./heap-tuning.js";
import { startRouter } from "./router.js";

/** Serves until SIGINT/SIGTERM, then drains; a second signal exits at once. */
export async function routerMain(parsed: ParsedCommand<RouterConfig>, io: CommandIO): Promise<number> {
  tuneRouterHeap();
  const cfg = parsed.config;
  const logger = createLogger("router", cfg.logLevel);
  const router = await startRouter(cfg, logger);
  io.stderr(
    `tensorclaw router: API on http://${cfg.host}:${router.httpPort}/v1, ` +
      `gRPC on ${cfg.host}:${router.grpcPort}, ledger ${cfg.redisUrl === undefined ? "embedded" : "redis"}\n`,
  );
  await waitForStopSignal(() => {
    io.stderr("tensorclaw router: stopping now (second signal)\n");
    process.exit(130);
  });
  io.stderr("tensorclaw router: draining miners and finishing in-flight requests\n");
  await router.close();
  logger.flush();
  return 0;
}
