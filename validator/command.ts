import { defineCommand } from "../common/command.js";
import { parseValidatorCommand, VALIDATOR_DEFAULTS, VALIDATOR_OPTIONS } from "./config.js";

/** `tensorclaw validator`. */
export const validatorCommand = defineCommand({
  name: "validator",
  summary: "Run a validator: probe miners, read the usage ledger, score, set weights.",
  usage: "tensorclaw validator --router <grpc://host:port> [options]",
  description:
    "Probes every connected miner through the router, reads 24 h usage from UsageReport, scores miners\n" +
    "(10 % base + 90 % business) and sets weights on the Subtensor chain (--chain), or prints them (--dry-run).",
  options: VALIDATOR_OPTIONS,
  defaults: VALIDATOR_DEFAULTS,
  parse: parseValidatorCommand,
  main: async (_parsed, io) => {
    io.stderr("tensorclaw validator: not implemented yet\n");
    return 1;
  },
});
