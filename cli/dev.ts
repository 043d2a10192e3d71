import { defineCommand } from "../common/command.js";
import { DEV_DEFAULTS, DEV_OPTIONS, parseDevCommand } from "./dev-config.js";

/** `tensorclaw dev`: the whole local network in one process tree. */
export const devCommand = defineCommand({
  name: "dev",
  summary: "Run a local network: a router, demo miners and a dry-run validator.",
  usage: "tensorclaw dev [options]",
  description:
    "Starts a router (embedded ledger unless REDIS_URL is set), --miners miners (one over WSS) and a\n" +
    "validator in dry-run mode, then prints the API address, a key and ready-to-paste examples.",
  options: DEV_OPTIONS,
  defaults: DEV_DEFAULTS,
  parse: parseDevCommand,
  main: async (_parsed, io) => {
    io.stderr("tensorclaw dev: not implemented yet\n");
    return 1;
  },
});
