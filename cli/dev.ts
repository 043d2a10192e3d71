import { defineCommand } from "../common/command.js";
import { DEV_DEFAULTS, DEV_OPTIONS, parseDevCommand } from "./dev-config.js";

/** `tensorclaw dev`: the whole local network in one process tree. */
export const devCommand = defineCommand({
  name: "dev",
  usage: "tensorclaw dev [options]",
  description:
    "Starts a router (embedded ledger unless REDIS_URL is set), --miners miners (one over WebSocket) and a\n" +
    "validator in dry-run mode, then prints the API address, a key and ready-to-paste examples. State\n" +
    "(identities, keys, embedded ledger) lives in --data-dir.",
  options: DEV_OPTIONS,
  defaults: DEV_DEFAULTS,
  parse: parseDevCommand,
  // Loaded only now: help and settings need neither the hotkey's crypto nor the demo model.
  main: async (parsed, io) => (await import("./dev-main.js")).devMain(parsed, io),
});
