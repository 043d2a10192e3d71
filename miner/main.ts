// What `tensorclaw miner` does once its settings are read. Apart from
// miner/command.ts (help and settings), so that `miner --help` loads neither
// the hotkey's crypto nor the tunnels.
import { readFile } from "node:fs/promises";
import type { CommandIO } from "../common/command.js";
import type { ParsedCommand } from "../common/config.js";
import { TensorClawError } from "../common/errors.js";
import { type Hotkey, loadHotkey } from "../common/identity.js";
import { createLogger } from "../common/logger.js";
import type { MinerConfig } from "./config.js";
import { Miner } from "./miner.js";
import type { RouterPins } from "./tunnel/router-pins.js";
import { FileRouterPins } from "./tunnel/router-pins.js";

/** How long in-flight requests may run after SIGTERM/SIGINT. */
const SHUTDOWN_GRACE_MS = 15_000;

/** Loads the hotkey, dials the routers and serves until SIGINT/SIGTERM, then drains. */
export async function minerMain(parsed: ParsedCommand<MinerConfig>, io: CommandIO): Promise<number> {
  const cfg = parsed.config;
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
  let routerPins: RouterPins;
  try {
    routerPins = new FileRouterPins(cfg.dataDir);
  } catch (err) {
    if (err instanceof TensorClawError && err.code === "config_invalid") {
      io.stderr(`tensorclaw miner: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger("miner", cfg.logLevel).child({ hotkey: hotkey.address });
  const miner = new Miner(cfg, {
    hotkey,
    routerPins,
    logger,
    ...(extraCaPem === undefined ? {} : { extraCaPem }),
  });
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
}
