import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/**
 * Replaces `path` with `text` atomically (a temporary file in the same
 * folder, renamed over it), readable and writable by its owner only;
 * creates the folder when missing. For small secrets and key files that
 * must never be seen half written.
 */
export function writePrivateFileSync(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  renameSync(tmp, path);
}
