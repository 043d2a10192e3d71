#!/usr/bin/env node
// Lint step: no import crosses from one program folder into another.
// router/, miner/ and validator/ may import from common/ and gen/ only;
// common/ imports from no program folder. cli/, test/ and bench/ assemble
// the programs and may import anything. Static imports, re-exports and
// dynamic import() are all checked.
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

// `--root DIR` checks another tree (the lint's own test uses it).
const rootFlag = process.argv.indexOf("--root");
const ROOT =
  rootFlag > 0 && process.argv[rootFlag + 1] !== undefined
    ? resolve(process.argv[rootFlag + 1])
    : resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PROGRAMS = ["router", "miner", "validator"];
/** Folder → the top-level folders its files may import from (besides itself). */
const ALLOWED = {
  router: ["common", "gen"],
  miner: ["common", "gen"],
  validator: ["common", "gen"],
  common: ["gen"],
};
const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["'](\.{1,2}\/[^"']+)["']/g;

function* sources(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sources(path);
    else if (/\.(ts|mjs|js)$/.test(entry.name)) yield path;
  }
}

const problems = [];
for (const [folder, allowed] of Object.entries(ALLOWED)) {
  let files;
  try {
    files = [...sources(join(ROOT, folder))];
  } catch (err) {
    if (err.code === "ENOENT") continue;
    throw err;
  }
  for (const file of files) {
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(SPECIFIER)) {
      const target = relative(ROOT, resolve(dirname(file), match[1]));
      const top = target.split(sep)[0];
      if (top === folder || allowed.includes(top)) continue;
      const line = text.slice(0, match.index).split("\n").length;
      const why = PROGRAMS.includes(top)
        ? `imports from the program folder ${top}/`
        : `imports from ${top}/, outside ${[folder, ...allowed].map((f) => `${f}/`).join(", ")}`;
      problems.push(`${relative(ROOT, file)}:${line}: ${why} (${match[1]}); move what both need to common/`);
    }
  }
}
if (problems.length > 0) {
  process.stderr.write(`check-imports: ${problems.length} import(s) cross a program boundary\n`);
  for (const p of problems) process.stderr.write(`  ${p}\n`);
  process.exit(1);
}
process.stdout.write("check-imports: no import crosses a program boundary\n");
