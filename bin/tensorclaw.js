#!/usr/bin/env node
// Launcher: loads the TypeScript sources through bin/loader.mjs, so the CLI
// runs from a plain `npm ci` with no build step.
import "./register.mjs";

const { main } = await import("../cli/main.ts");
const code = await main(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
});
process.exitCode = code;
