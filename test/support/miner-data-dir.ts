/**
 * A fresh `--data-dir` for each `tensorclaw miner` a test starts. A miner
 * pins the router id it first meets at each address (router-pins.ts); test
 * routers come and go on recycled ports under different ids, so miners
 * sharing one folder would refuse a later router that got an earlier one's
 * port. All of them live under one folder removed when the process exits.
 */
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

let parent: string | undefined;

/** A new empty folder for one miner's state. */
export function minerDataDir(): string {
  if (parent === undefined) {
    const p = mkdtempSync(join(tmpdir(), "tc-miner-state-"));
    parent = p;
    process.once("exit", () => rmSync(p, { recursive: true, force: true }));
  }
  const dir = mkdtempSync(join(parent, "m-"));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** `--data-dir <fresh folder>`, to append to a miner's arguments. */
export function minerDataDirArgs(): string[] {
  return ["--data-dir", minerDataDir()];
}
