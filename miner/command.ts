import { defineCommand } from "../common/command.js";
import { MINER_DEFAULTS, MINER_OPTIONS, parseMinerCommand } from "./config.js";

/** `tensorclaw miner`. */
export const minerCommand = defineCommand({
  name: "miner",
  summary: "Run a miner: dial out to routers and serve inference from an OpenAI-compatible backend.",
  usage: "tensorclaw miner --router <url> [--router <url>…] --backend <url|demo> [options]",
  description:
    "Connects out to every --router (no public address needed) and serves the requests they send with\n" +
    "--backend. The hotkey comes from --wallet/--hotkey or TENSORCLAW_MNEMONIC.",
  options: MINER_OPTIONS,
  defaults: MINER_DEFAULTS,
  parse: parseMinerCommand,
  main: async (_parsed, io) => {
    io.stderr("tensorclaw miner: not implemented yet\n");
    return 1;
  },
});
