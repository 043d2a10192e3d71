import { type Command, defineCommand } from "../common/command.js";
import { TensorClawError } from "../common/errors.js";
import { parseRouterCommand, ROUTER_DEFAULTS, ROUTER_OPTIONS } from "./config.js";
import { tiersCommand } from "./ledger/tiers-command.js";

/** `tensorclaw router`. */
const serveCommand = defineCommand({
  name: "router",
  usage: "tensorclaw router [options]",
  description:
    "Serves the OpenAI-compatible API on --http-port and the miner tunnel plus the Probe, UsageReport and\n" +
    "MinerDirectory services on --grpc-port. Usage goes to Redis (--redis-url / REDIS_URL) or, without it,\n" +
    "to the embedded in-process ledger.",
  options: ROUTER_OPTIONS,
  defaults: ROUTER_DEFAULTS,
  parse: parseRouterCommand,
  main: async (parsed, io) => {
    if (parsed.positionals.length > 0) {
      throw new TensorClawError(
        "config_invalid",
        `unexpected argument ${JSON.stringify(parsed.positionals[0])} (did you mean \`tensorclaw router tiers …\`?)`,
      );
    }
    // Loaded only now: help and settings need none of the servers.
    return (await import("./main.js")).routerMain(parsed, io);
  },
});

/** `tensorclaw router`, and `tensorclaw router tiers …` for the ledger's tier multipliers. */
export const routerCommand: Command = {
  ...serveCommand,
  run: (argv, io) => (argv[0] === "tiers" ? tiersCommand.run(argv.slice(1), io) : serveCommand.run(argv, io)),
};
