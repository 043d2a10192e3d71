// What a program without Redis must not load: ioredis is imported only by
// common/redis-connect.ts when a --redis-url is given (start-up time, see the
// startup benchmark). A module that imports it for a value (`instanceof
// Cluster`, say) loads it for every router; this catches that.
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect } from "chai";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** A loader hook that reports, on stderr, every import of `pkg` and who made it. */
function watchImports(pkg: string): string {
  const hook = `export async function resolve(s, c, next) {
    if (s === ${JSON.stringify(pkg)} || s.startsWith(${JSON.stringify(`${pkg}/`)})) process.stderr.write("IMPORTED " + s + " from " + c.parentURL + "\\n");
    return next(s, c);
  }`;
  const setup = `import { register } from "node:module"; register(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hook)}`)});`;
  return `data:text/javascript,${encodeURIComponent(setup)}`;
}

/** Imports `module` in a fresh node and returns the imports of `pkg` it saw. */
function importsOf(module: string, pkg: string): string[] {
  const r = spawnSync(
    process.execPath,
    [
      ...["--import", watchImports(pkg), "--import", "./bin/register.mjs", "--input-type=module"],
      ...["-e", `await import(${JSON.stringify(module)}); console.log("imported");`],
    ],
    { cwd: ROOT, encoding: "utf8", timeout: 30_000 },
  );
  expect(r.stdout, r.stderr).to.include("imported");
  return r.stderr.split("\n").filter((l) => l.startsWith("IMPORTED "));
}

describe("modules a program without Redis must not load", function () {
  this.timeout(60_000);

  for (const module of ["./router/router.ts", "./miner/main.ts", "./validator/main.ts", "./cli/main.ts"]) {
    it(`${module} does not import ioredis until a Redis URL is opened`, () => {
      expect(importsOf(module, "ioredis")).to.deep.equal([]);
    });
  }

  it("sees a static import of ioredis, and none in redis-connect (it imports it when a URL is opened)", () => {
    expect(importsOf("./common/redis-connect.ts", "ioredis")).to.deep.equal([]);
    expect(importsOf("./test/support/redis.ts", "ioredis")).to.have.length.greaterThan(0);
  });
});
