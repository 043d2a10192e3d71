import { defineCommand } from "../common/command.js";
import { parseRouterCommand, ROUTER_DEFAULTS, ROUTER_OPTIONS } from "./config.js";

/** `tensorclaw router`. */
export const routerCommand = defineCommand({
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
