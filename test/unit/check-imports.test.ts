import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";

const SCRIPT = fileURLToPath(new URL("../../scripts/check-imports.mjs", import.meta.url));

/** Runs the lint on a throwaway tree made of `files` (path → source). */
function check(files: Record<string, string>): { code: number | null; stderr: string } {
  const root = mkdtempSync(join(tmpdir(), "tc-imports-"));
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
    }
    const r = spawnSync(process.execPath, [SCRIPT, "--root", root], { encoding: "utf8" });
    return { code: r.status, stderr: r.stderr };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

describe("lint: imports between program folders", () => {
  it("passes the real tree", () => {
    const r = spawnSync(process.execPath, [SCRIPT], { encoding: "utf8" });
    expect(r.stderr).to.equal("");
    expect(r.status).to.equal(0);
  });

  it("accepts imports of common/ and gen/ and within a program", () => {
    const r = check({
      "router/a/x.ts": 'import { y } from "../b/y.js";\nimport { c } from "../../common/c.js";\n',
      "validator/v.ts": 'import type { G } from "../gen/g.js";\n',
      "common/c.ts": 'export { g } from "../gen/g.js";\n',
    });
    expect(r.code).to.equal(0);
  });

  for (const [name, files, named] of [
    [
      "a static import",
      { "validator/v.ts": 'import { s } from "../router/tunnel/s.js";\n' },
      "validator/v.ts:1",
    ],
    ["a dynamic import", { "router/a.ts": '\n\nawait import("../validator/chain.js");\n' }, "router/a.ts:3"],
    ["a re-export", { "miner/m.ts": 'export * from "../router/x.js";\n' }, "miner/m.ts:1"],
    [
      "common/ importing a program",
      { "common/c.ts": 'import { m } from "../miner/m.js";\n' },
      "common/c.ts:1",
    ],
  ] as const) {
    it(`fails on ${name}, naming the file and line`, () => {
      const r = check(files);
      expect(r.code).to.equal(1);
      expect(r.stderr).to.include(named);
    });
  }
});
