// `node --import ./bin/register.mjs file.ts`: runs TypeScript sources through
// bin/loader.mjs, with source-mapped stack traces.
import { register } from "node:module";

process.setSourceMapsEnabled(true);
register("./loader.mjs", import.meta.url);
