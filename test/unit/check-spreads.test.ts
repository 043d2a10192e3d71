import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";

const SCRIPT = fileURLToPath(new URL("../../scripts/check-spreads.mjs", import.meta.url));
const TSCONFIG = JSON.stringify({ compilerOptions: { strict: true, target: "ES2022", module: "ES2022" } });

/** Runs the lint on a throwaway tree made of `files` (path → source; a bare string is router/x.ts). */
function check(files: string | Record<string, string>): { code: number | null; stderr: string } {
  const root = mkdtempSync(join(tmpdir(), "tc-spreads-"));
  try {
    writeFileSync(join(root, "tsconfig.json"), TSCONFIG);
    for (const [path, text] of Object.entries(typeof files === "string" ? { "router/x.ts": files } : files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    const r = spawnSync(process.execPath, [SCRIPT, "--root", root], { encoding: "utf8" });
    return { code: r.status, stderr: r.stderr };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const FACTS = "const facts = (n: number) => ({ id: 'r', n });\n";

describe("lint: keys added after a leading spread", () => {
  it("passes the real tree", () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: "utf8" });
    expect(r.stderr).to.equal("");
    expect(r.status).to.equal(0);
  });

  it("fails on a literal that adds keys after a leading spread, naming file, line and keys", () => {
    const r = check(
      `${FACTS}\nexport const o = {\n  ...facts(1),\n  model: "m",\n  n: 2,\n  prompt: 3,\n};\n`,
    );
    expect(r.code).to.equal(1);
    expect(r.stderr).to.include("router/x.ts:3: keys model, prompt added");
    expect(r.stderr).not.to.include(" n,");
  });

  it("checks common/, miner/ and validator/ too, but not tests nor cli/", () => {
    const bad = `${FACTS}export const o = { ...facts(1), model: "m" };\n`;
    const files = ["common/c.ts", "miner/m.ts", "validator/v.ts", "router/x.test.ts", "cli/k.ts"];
    const r = check(Object.fromEntries(files.map((f) => [f, bad])));
    expect(r.code).to.equal(1);
    for (const f of files.slice(0, 3)) expect(r.stderr).to.include(`${f}:2:`);
    for (const f of files.slice(3)) expect(r.stderr).not.to.include(f);
  });

  for (const [name, body] of [
    ["the spread last", `export const o = { model: "m", ...facts(1) };`],
    ["keys the spread already has (overrides)", `export const o = { ...facts(1), n: 2, id: "s" };`],
    [
      "a spread whose type has an index signature",
      `const h: Record<string, string> = {};\nexport const o = { ...h, model: "m" };`,
    ],
    ["a spread of type object", `const b: object = {};\nexport const o = { ...b, model: "m" };`],
    [
      "a literal marked on the line above",
      `// check-spreads: allow (key order is the point)\nexport const o = { ...facts(1), model: "m" };`,
    ],
  ] as const) {
    it(`accepts ${name}`, () => {
      const r = check(`${FACTS}${body}\n`);
      expect(r.stderr).to.equal("");
      expect(r.code).to.equal(0);
    });
  }
});
