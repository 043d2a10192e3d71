import { open, rename } from "node:fs/promises";
import { dirname } from "node:path";

/** Lines buffered before each write of a rewrite. */
const LINES_PER_WRITE = 10_000;

/**
 * Replaces the file at `path` with the lines `emit` pushes, atomically: they
 * are written to `<path>.compact` a buffer at a time, that file is fsynced
 * and renamed over `path`, and the folder is fsynced so the rename itself
 * survives a power loss. A crash leaves the old file or the new one, never a
 * mix. Used to compact the embedded ledger's and billing store's journals.
 */
export async function rewriteLines(
  path: string,
  emit: (push: (line: string) => Promise<void>) => Promise<void>,
): Promise<void> {
  const tmp = `${path}.compact`;
  const out = await open(tmp, "w");
  try {
    const chunk: string[] = [];
    const flush = async () => {
      if (chunk.length === 0) return;
      await out.write(`${chunk.join("\n")}\n`);
      chunk.length = 0;
    };
    await emit(async (line) => {
      chunk.push(line);
      if (chunk.length >= LINES_PER_WRITE) await flush();
    });
    await flush();
    await out.sync();
  } finally {
    await out.close();
  }
  await rename(tmp, path);
  const dir = await open(dirname(path), "r");
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
