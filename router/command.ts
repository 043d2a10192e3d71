import { type Command, defineCommand } from "../common/command.js";
import { TensorClawError } from "../common/errors.js";
import { createLogger } from "../common/logger.js";
import { waitForStopSignal } from "../common/signals.js";
import { modelsCommand } from "./catalogue/models-command.js";
import { tiersCommand } from "./catalogue/tiers-command.js";
import { parseRouterCommand, ROUTER_DEFAULTS, ROUTER_OPTIONS } from "./config.js";
import { startRouter } from "./router.js";

/** `tensorclaw router`. */
const serveCommand = defineCommand({
  name: "router",
  summary: "Run the router: OpenAI-compatible API, miner tunnels, usage ledger, validator services.",
  usage: "tensorclaw router [options]",
  description:
    "Serves the OpenAI-compatible API on --http-port and the miner tunnel plus the Probe, UsageReport and\n" +
    "MinerDirectory services on --grpc-port. Usage goes to Redis (--redis-url / REDIS_URL) or, without it,\n" +
    "to the embedded in-process ledger.",
  options: ROUTER_OPTIONS,
  defaults: ROUTER_DEFAULTS,
  parse: parseRouterCommand,
  main: async (parsed, io) => {
    const cfg = parsed.config;
    if (parsed.positionals.length > 0) {
      throw new TensorClawError(
        "config_invalid",
        `unexpected argument ${JSON.stringify(parsed.positionals[0])} (did you mean \`tensorclaw router tiers …\`?)`,
      );
    }
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
  },
});

const SUBCOMMANDS: Readonly<Record<string, Command>> = { models: modelsCommand, tiers: tiersCommand };

/** `tensorclaw router`, `tensorclaw router models …` (the model catalogue) and `router tiers …` (its tier column). */
export const routerCommand: Command = {
  ...serveCommand,
  run: (argv, io) => {
    const sub = SUBCOMMANDS[argv[0] ?? ""];
    return sub === undefined ? serveCommand.run(argv, io) : sub.run(argv.slice(1), io);
  },
};
