import { mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";

/**
 * Appends one line to a journal file (creating it and its folder) and
 * fsyncs it. When the file ends in a torn line (a writer crashed mid-line),
 * a newline goes first, so the torn line cannot swallow this one.
 */
export async function appendLineSynced(path: string, line: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, "a+");
  try {
    const size = (await fh.stat()).size;
    let lead = "";
    if (size > 0) {
      const last = Buffer.alloc(1);
      await fh.read(last, 0, 1, size - 1);
      if (last[0] !== 10) lead = "\n";
    }
    await fh.write(`${lead}${line}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
