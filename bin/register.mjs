// `node --import ./bin/register.mjs file.ts`: runs TypeScript sources through
// bin/loader.mjs, with source-mapped stack traces. Compiled files are cached in
// node_modules/.cache/tensorclaw-ts/ (or TENSORCLAW_TS_CACHE), keyed by their
// content: deleting the folder is always safe, it only costs one slower start.
import { register } from "node:module";
import { fileURLToPath } from "node:url";

const cacheDir =
  process.env.TENSORCLAW_TS_CACHE ||
  fileURLToPath(new URL("../node_modules/.cache/tensorclaw-ts/", import.meta.url));

process.setSourceMapsEnabled(true);
register("./loader.mjs", import.meta.url, { data: { cacheDir } });
