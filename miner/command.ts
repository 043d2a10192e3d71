import { readFile } from "node:fs/promises";
import { defineCommand } from "../common/command.js";
import { TensorClawError } from "../common/errors.js";
import { type Hotkey, loadHotkey } from "../common/identity.js";
import { createLogger } from "../common/logger.js";
import { MINER_DEFAULTS, MINER_OPTIONS, parseMinerCommand } from "./config.js";
import { Miner } from "./miner.js";

/** How long in-flight requests may run after SIGTERM/SIGINT. */
const SHUTDOWN_GRACE_MS = 15_000;

/** `tensorclaw miner`. */
export const minerCommand = defineCommand({
  name: "miner",
  summary: "Run a miner: dial out to routers and serve inference from an OpenAI-compatible backend.",
  usage: "tensorclaw miner --router <url> [--router <url>…] --backend <url|demo> [options]",
  description:
    "Connects out to every --router (no public address needed) and serves the requests they send with\n" +
    "--backend. The hotkey comes from --wallet/--hotkey or TENSORCLAW_MNEMONIC. --backend demo serves the\n" +
    'built-in demo model "tensorclaw-demo" (deterministic text, not a real LLM) for local experiments.',
  options: MINER_OPTIONS,
  defaults: MINER_DEFAULTS,
  parse: parseMinerCommand,
  main: async (parsed, io) => {
    const cfg = parsed.config;
    if (parsed.positionals.length > 0) {
      io.stderr(`tensorclaw miner: unexpected argument ${JSON.stringify(parsed.positionals[0])}\n`);
      return 2;
    }
    let hotkey: Hotkey;
    try {
      hotkey = await loadHotkey({
        mnemonic: cfg.mnemonic,
        wallet: cfg.wallet,
        hotkey: cfg.hotkey,
        walletPath: cfg.walletPath,
      });
    } catch (err) {
      if (err instanceof TensorClawError && err.code === "config_invalid") {
        io.stderr(`tensorclaw miner: ${err.message}\n`);
        return 2;
      }
      throw err;
    }
    let extraCaPem: string | undefined;
    if (cfg.tlsCa !== undefined) {
      try {
        extraCaPem = await readFile(cfg.tlsCa, "utf8");
      } catch (err) {
        io.stderr(
          `tensorclaw miner: invalid setting --tls-ca: cannot read ${cfg.tlsCa} (${(err as Error).message})\n`,
        );
        return 2;
      }
    }
    const logger = createLogger("miner", cfg.logLevel).child({ hotkey: hotkey.address });
    const miner = new Miner(cfg, { hotkey, logger, ...(extraCaPem === undefined ? {} : { extraCaPem }) });
    await miner.start();
    // Runs until told to stop. Then in-flight requests get a grace period to
    // finish (the routers stop sending new ones at once); a second signal cuts it short.
    await new Promise<void>((resolve) => {
      process.once("SIGINT", () => resolve());
      process.once("SIGTERM", () => resolve());
    });
    logger.info({ graceMs: SHUTDOWN_GRACE_MS }, "shutting down");
    const hurry = () => void miner.stop(0);
    process.once("SIGINT", hurry);
    process.once("SIGTERM", hurry);
    await miner.stop(SHUTDOWN_GRACE_MS);
    logger.flush();
    return 0;
  },
});
