// Module loader hooks that run the TypeScript sources directly: each .ts file
// is compiled by esbuild when first imported (types stripped, nothing else
// changed) with an inline source map for stack traces. Relative imports are
// written NodeNext style (`./x.js`); when no such .js file exists, `./x.ts`
// is loaded instead.
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
  if (!url.startsWith("file:")) return nextLoad(url, context);
  if (!url.endsWith(".ts") || url.includes("/node_modules/")) {
    // Every ES module a package ships passes through these hooks (several hundred
    // for @polkadot alone); one synchronous read is cheaper than Node's default
    // asynchronous one. Other formats (CommonJS, JSON, …) go the default way.
    if (context.format !== "module") return nextLoad(url, context);
    return { format: "module", source: readFileSync(new URL(url)), shortCircuit: true };
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
