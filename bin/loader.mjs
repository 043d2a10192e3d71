// Module loader hooks that run the TypeScript sources directly: each .ts file
// is compiled by esbuild when first imported (types stripped, nothing else
// changed) with an inline source map for stack traces. Relative imports are
// written NodeNext style (`./x.js`); when no such .js file exists, `./x.ts`
// is loaded instead. @polkadot packages are imported through their CommonJS
// build (see COMMONJS_BUILD).
//
// Compiled files are kept in a cache folder (bin/ts-cache.mjs; register.mjs
// says where), so a start after the first compiles nothing and does not even
// load esbuild: starting its service alone costs about 0.1 s. Without a
// folder, or when it cannot be written, every start compiles.
//
// tsx does the same job but always compiles with esbuild's keepNames, which
// wraps every function expression in a call that redefines its `name`; that
// costs ~0.7 µs per closure created, on every request. Node keeps function
// names by itself for unminified code, so nothing is lost here.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { TsCache } from "./ts-cache.mjs";

const RELATIVE_JS = /^\.{1,2}\/.*\.js$/;

/**
 * Packages imported through their CommonJS build. Node 20 sends every ES
 * module through these hooks, two messages to the hooks thread each; the ES
 * build of @polkadot is some 400 files, its CommonJS build (loaded by
 * require(), which the hooks do not see) the same code. Importing
 * common/identity.ts costs ~380 ms of CPU instead of ~560 that way, and
 * starting the router ~820 instead of ~1,130 (medians of 7). Every importer
 * gets the same build, so there is still one instance (polkadot warns when
 * it finds two).
 */
const COMMONJS_BUILD = /^@polkadot\//;

/** @type {TsCache | undefined} */
let cache;
/** @type {typeof import("esbuild") | undefined} */
let esbuild;

/** Called by `register()` with `{ cacheDir }` (undefined: no cache). */
export function initialize(data) {
  if (typeof data?.cacheDir !== "string" || data.cacheDir === "") return;
  try {
    // The version, not the module: reading a package.json costs nothing, loading esbuild does.
    const pkg = createRequire(import.meta.url).resolve("esbuild/package.json");
    cache = new TsCache(data.cacheDir, `esbuild ${JSON.parse(readFileSync(pkg, "utf8")).version}`);
  } catch {
    cache = undefined;
  }
}

export async function resolve(specifier, context, nextResolve) {
  if (COMMONJS_BUILD.test(specifier)) {
    const conditions = [...context.conditions.filter((c) => c !== "import"), "require"];
    return nextResolve(specifier, { ...context, conditions });
  }
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (err?.code === "ERR_MODULE_NOT_FOUND" && RELATIVE_JS.test(specifier)) {
      return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
    }
    throw err;
  }
}

export async function load(url, context, nextLoad) {
  if (!url.startsWith("file:") || !url.endsWith(".ts") || url.includes("/node_modules/")) {
    return nextLoad(url, context);
  }
  const path = fileURLToPath(url);
  const source = readFileSync(path, "utf8");
  const options = { loader: "ts", format: "esm", target: "node20", sourcemap: "inline", sourcefile: path };
  let code = cache?.get(options, source);
  if (code === undefined) {
    esbuild ??= await import("esbuild");
    ({ code } = await esbuild.transform(source, options));
    cache?.put(options, source, code);
  }
  return { format: "module", source: code, shortCircuit: true };
}
