import { defineCommand } from "../common/command.js";
import { MINER_DEFAULTS, MINER_OPTIONS, parseMinerCommand } from "./config.js";

/** `tensorclaw miner`. */
export const minerCommand = defineCommand({
  name: "miner",
  usage: "tensorclaw miner --router <url> [--router <url>…] --backend <url|demo> [options]",
  description:
    "Connects out to every --router (no public address needed) and serves the requests they send with\n" +
    "--backend. The hotkey comes from --wallet/--hotkey or TENSORCLAW_MNEMONIC. --backend demo serves the\n" +
    'built-in demo model "tensorclaw-demo" (a tiny n-gram model, not a real LLM) for local experiments.',
  options: MINER_OPTIONS,
  defaults: MINER_DEFAULTS,
  parse: parseMinerCommand,
  main: async (parsed, io) => {
    if (parsed.positionals.length > 0) {
      io.stderr(`tensorclaw miner: unexpected argument ${JSON.stringify(parsed.positionals[0])}\n`);
      return 2;
    }
    // Loaded only now: help and settings need neither the hotkey's crypto nor the tunnels.
    return (await import("./main.js")).minerMain(parsed, io);
  },
});
