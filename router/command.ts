import { type Command, defineCommand } from "../common/command.js";
import { TensorClawError } from "../common/errors.js";
import { modelsCommand } from "./catalogue/models-command.js";
import { tiersCommand } from "./catalogue/tiers-command.js";
import { parseRouterCommand, ROUTER_DEFAULTS, ROUTER_OPTIONS } from "./config.js";

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
        `unexpected argument ${JSON.stringify(parsed.positionals[0])} (did you mean \`tensorclaw router models …\` or \`router tiers …\`?)`,
      );
    }
    // Loaded only now: help and settings need none of the servers.
    return (await import("./main.js")).routerMain(parsed, io);
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
