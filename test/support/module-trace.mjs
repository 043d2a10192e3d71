// `node --import ./bin/register.mjs --import ./test/support/module-trace.mjs …`
// appends the URL of every module the program loads (after bin/loader.mjs has
// resolved it) to the file named by TENSORCLAW_MODULE_TRACE, one per line. Both
// halves live here: imported on the main thread it registers itself as hooks.
// Modules that CommonJS code require()s are not seen, only the ES imports.
import { appendFileSync } from "node:fs";
import { register } from "node:module";
import { isMainThread } from "node:worker_threads";

let traceFile;

export function initialize(data) {
  traceFile = data.traceFile;
}

export async function load(url, context, nextLoad) {
  appendFileSync(traceFile, `${url}\n`);
  return nextLoad(url, context);
}

if (isMainThread && process.env.TENSORCLAW_MODULE_TRACE !== undefined) {
  register(import.meta.url, { data: { traceFile: process.env.TENSORCLAW_MODULE_TRACE } });
}
