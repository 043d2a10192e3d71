#!/usr/bin/env node
// Lint step: no object literal starts with a spread and then adds keys the
// spread's type does not have, as in `{ ...facts(st), model, prompt }`.
//
// Why: on Node 20 (V8 11.3) such a literal is built by cloning the spread
// object and then adding each further key through a slow path, about 0.65 us
// per added key, where `{ model, prompt, ...facts(st) }` or spelling the keys
// out costs tens of nanoseconds. Measured here: a 10-key literal after a
// leading spread 8.6 us against 20 ns written out. Two such literals per chat
// request cost the router half its CPU per request (bench:api, throughput:
// 0.207 -> 0.093 ms of router CPU, 3,803 -> 6,345 req/s, same run). Keys the
// spread already has (overriding them, as in `{ ...b, paid }`) are not slow
// and are allowed, so are literals whose spread type has an index signature
// or no known keys at all (`object`): nothing is known of what they carry.
//
// The fix is to put the spread last when no key overlaps (the checker proves
// none does statically), or to spell the keys out. Where neither fits (the
// order of keys is what the literal is for, or the spread object may carry
// the same keys at run time) and the literal is not on a hot path, a comment
// `check-spreads: allow (why)` on the line above it lets it be.
//
// Checks the program folders (common, router, miner, validator; not the one-shot
// commands of cli/, where output order matters more than nanoseconds) through
// the TypeScript checker, with tsconfig.json. `--root DIR` checks another
// tree (the lint's own test uses it); that tree needs its own tsconfig.json.
import { dirname, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const rootFlag = process.argv.indexOf("--root");
const ROOT =
  rootFlag > 0 && process.argv[rootFlag + 1] !== undefined
    ? resolve(process.argv[rootFlag + 1])
    : resolve(dirname(fileURLToPath(import.meta.url)), "..");
const FOLDERS = ["common", "router", "miner", "validator"];

const config = ts.getParsedCommandLineOfConfigFile(
  resolve(ROOT, "tsconfig.json"),
  {},
  {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d) => {
      process.stderr.write(`${ts.flattenDiagnosticMessageText(d.messageText, "\n")}\n`);
      process.exit(2);
    },
  },
);
const inScope = (file) => {
  const rel = relative(ROOT, file);
  return FOLDERS.some((f) => rel.startsWith(f + sep) || rel.startsWith(`${f}/`)) && !rel.endsWith(".test.ts");
};
const program = ts.createProgram(config.fileNames.filter(inScope), config.options);
const checker = program.getTypeChecker();

/** The literal name of a property, or undefined when it is computed. */
function keyName(p) {
  const n = p.name;
  if (n === undefined) return undefined;
  if (ts.isIdentifier(n) || ts.isStringLiteral(n) || ts.isNumericLiteral(n)) return n.text;
  return undefined;
}

const lineCache = new Map();
/** The lines of a source file. */
function lines(sf) {
  let l = lineCache.get(sf);
  if (l === undefined) {
    l = sf.text.split("\n");
    lineCache.set(sf, l);
  }
  return l;
}

const problems = [];
for (const sf of program.getSourceFiles()) {
  if (sf.isDeclarationFile || !inScope(sf.fileName)) continue;
  const visit = (node) => {
    if (ts.isObjectLiteralExpression(node) && node.properties.length > 1) {
      const [first, ...rest] = node.properties;
      if (ts.isSpreadAssignment(first)) {
        const type = checker.getApparentType(checker.getTypeAtLocation(first.expression));
        const has = new Set(checker.getPropertiesOfType(type).map((s) => s.getName()));
        if (checker.getIndexInfosOfType(type).length === 0 && has.size > 0) {
          const added = [];
          for (const p of rest) {
            if (ts.isSpreadAssignment(p)) break;
            const name = keyName(p);
            if (name === undefined || !has.has(name)) added.push(name ?? "[computed]");
          }
          const { line } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
          const allowed = (lines(sf)[line - 1] ?? "").includes("check-spreads: allow");
          if (added.length > 0 && !allowed) {
            problems.push(
              `${relative(ROOT, sf.fileName)}:${line + 1}: keys ${added.join(", ")} added after a leading spread (put the spread last or spell the keys out)`,
            );
          }
        }
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}

if (problems.length > 0) {
  process.stderr.write(
    `Object literals that add keys after a leading spread (slow on V8; see scripts/check-spreads.mjs):\n${problems.map((p) => `  ${p}`).join("\n")}\n`,
  );
  process.exit(1);
}
