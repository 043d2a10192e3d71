import { type Command, defineCommand } from "../common/command.js";
import { parseRouterCommand, ROUTER_DEFAULTS, ROUTER_OPTIONS } from "./config.js";
import { tiersCommand } from "./tiers-command.js";

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
  main: async (_parsed, io) => {
    io.stderr("tensorclaw router: not implemented yet\n");
    return 1;
  },
});

/** `tensorclaw router`, and `tensorclaw router tiers …` for the ledger's tier multipliers. */
export const routerCommand: Command = {
  ...serveCommand,
  run: (argv, io) => (argv[0] === "tiers" ? tiersCommand.run(argv.slice(1), io) : serveCommand.run(argv, io)),
};
