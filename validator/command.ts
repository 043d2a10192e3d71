import { defineCommand } from "../common/command.js";
import { parseValidatorCommand, VALIDATOR_DEFAULTS, VALIDATOR_OPTIONS } from "./config.js";

/** `tensorclaw validator` (and `tensorclaw validator scores`). */
export const validatorCommand = defineCommand({
  name: "validator",
  usage: "tensorclaw validator [scores] --router <grpc://host:port> [options]",
  description:
    "Probes every connected miner through the router, reads 24 h usage from UsageReport, scores miners\n" +
    "(10 % base + 90 % business) and sets weights on the Subtensor chain (--chain), or prints them (--dry-run).\n" +
    "`tensorclaw validator scores` prints the current score table from stored probe history and exits.",
  options: VALIDATOR_OPTIONS,
  defaults: VALIDATOR_DEFAULTS,
  parse: parseValidatorCommand,
  // Loaded only now: help and settings need neither the hotkey's crypto, nor Redis, nor gRPC.
  main: async (parsed, io) => (await import("./main.js")).validatorMain(parsed, io),
});
