// bin/loader.mjs keeps compiled TypeScript in a cache folder (each test here
// gets its own, through TENSORCLAW_TS_CACHE). Real child processes: whatever
// state the folder is in, programs run the current source; a sound entry is
// run as it is, anything else is compiled again.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { type CliResult, runCli } from "../support/cli.js";

const REGISTER = fileURLToPath(new URL("../../bin/register.mjs", import.meta.url));
/** A line only cli/main.ts holds: it finds that file's entry among the hashed names. */
const TOP_HELP_LINE = "TensorClaw (Bittensor SN92): a decentralised OpenAI-compatible LLM API marketplace.";

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/** An entry's code when its first line is the SHA-256 of the rest (the format bin/ts-cache.mjs writes). */
function openEntry(text: string): string | undefined {
  const newline = text.indexOf("\n");
  const code = text.slice(newline + 1);
  return newline !== -1 && text.slice(0, newline) === sha256(code) ? code : undefined;
}

/** Every file in the folder, temporary ones included. */
async function files(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

/** The entry compiled from cli/main.ts. */
async function mainEntry(dir: string): Promise<string> {
  for (const name of await files(dir)) {
    const path = join(dir, name);
    if ((await readFile(path, "utf8")).includes(TOP_HELP_LINE)) return path;
  }
  throw new Error(`no entry of cli/main.ts in ${dir}`);
}

/** Runs `node --import bin/register.mjs <file>` and collects its output, whatever its exit code. */
function runTs(file: string, env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", REGISTER, file], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("compiled TypeScript cache (bin/loader.mjs, child processes)", function () {
  this.timeout(60_000);
  let dir = "";
  let cache = "";
  let env: Record<string, string> = {};
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-ts-cache-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    cache = await mkdtemp(join(dir, "cache-"));
    env = { TENSORCLAW_TS_CACHE: cache };
  });

  it("fills the folder on a first run, and a second run executes the cached code", async () => {
    const first = await runCli(["--help"], env);
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stdout).to.contain(TOP_HELP_LINE);
    const names = await files(cache);
    expect(names).to.not.be.empty;
    for (const name of names)
      expect(openEntry(await readFile(join(cache, name), "utf8")), name).to.be.a("string");
    // A sound entry whose code differs from what compiling would give: only a
    // run that takes its code from the cache prints the marker.
    const entry = await mainEntry(cache);
    const code = openEntry(await readFile(entry, "utf8")) ?? "";
    const marked = code.replace(TOP_HELP_LINE, "served from the cache");
    await writeFile(entry, `${sha256(marked)}\n${marked}`);
    const second = await runCli(["--help"], env);
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.contain("served from the cache").and.not.contain(TOP_HELP_LINE);
  });

  it("compiles again, and does not run, an entry whose code does not match its digest", async () => {
    const first = await runCli(["--help"], env);
    const entry = await mainEntry(cache);
    const text = await readFile(entry, "utf8");
    await writeFile(entry, text.replace(TOP_HELP_LINE, "tampered"));
    const second = await runCli(["--help"], env);
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.equal(first.stdout);
    // …and the entry is sound again.
    expect(await readFile(entry, "utf8")).to.equal(text);
  });

  it("compiles again, and does not run, a truncated entry", async () => {
    const first = await runCli(["--help"], env);
    const entry = await mainEntry(cache);
    const text = await readFile(entry, "utf8");
    await truncate(entry, Math.floor(text.length / 2));
    const second = await runCli(["--help"], env);
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.equal(first.stdout);
    expect(await readFile(entry, "utf8")).to.equal(text);
  });

  it("runs the same after the folder is deleted, and fills it again", async () => {
    const first = await runCli(["router", "--help"], env);
    await rm(cache, { recursive: true });
    const second = await runCli(["router", "--help"], env);
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.equal(first.stdout);
    expect(await files(cache)).to.not.be.empty;
  });

  it("runs the same when the folder cannot be created", async () => {
    const plain = await runCli(["keys", "--help"], env);
    const notADir = join(dir, `file-${Date.now()}`);
    await writeFile(notADir, "");
    const r = await runCli(["keys", "--help"], { TENSORCLAW_TS_CACHE: join(notADir, "cache") });
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.equal(plain.stdout);
  });

  it("serves programs started together from an empty folder, leaving only sound entries", async () => {
    const runs = await Promise.all(Array.from({ length: 6 }, () => runCli(["router", "--help"], env)));
    for (const r of runs) {
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.equal(runs[0]?.stdout);
    }
    const names = await files(cache);
    expect(
      names.filter((n) => !/^[0-9a-f]{16}-[0-9a-f]{32}\.js$/.test(n)),
      "stray files",
    ).to.deep.equal([]);
    for (const name of names)
      expect(openEntry(await readFile(join(cache, name), "utf8")), name).to.be.a("string");
  });

  it("runs an edited source, not the entry of its previous text, and drops that entry", async () => {
    const file = join(dir, `edited-${Date.now()}.ts`);
    await writeFile(file, 'const word: string = "before";\nconsole.log(word);\n');
    expect((await runTs(file, env)).stdout).to.equal("before\n");
    const [before] = await files(cache);
    await writeFile(file, 'const word: string = "after";\nconsole.log(word);\n');
    expect((await runTs(file, env)).stdout).to.equal("after\n");
    const names = await files(cache);
    expect(names).to.have.length(1);
    expect(names[0]).to.not.equal(before);
    // Same file, same options: only the part naming the source text differs.
    expect(names[0]?.slice(0, 17)).to.equal(before?.slice(0, 17));
  });

  it("maps stack traces to the TypeScript lines, compiled or from the cache", async () => {
    // esbuild drops the interface, so the throw moves up four lines in the output:
    // only a working source map reports line 6.
    const file = join(dir, `thrower-${Date.now()}.ts`);
    await writeFile(
      file,
      [
        "interface Shape {",
        "  readonly sides: number;",
        "  readonly name: string;",
        "}",
        "function fail(shape: Shape): never {",
        '  throw new Error("no " + shape.name);',
        "}",
        'fail({ sides: 3, name: "triangle" });',
        "",
      ].join("\n"),
    );
    for (const run of ["compiled", "cached"]) {
      const r = await runTs(file, env);
      expect(r.code, run).to.equal(1);
      expect(r.stderr, run).to.contain("Error: no triangle").and.contain(`${file}:6:9`);
    }
    expect((await stat(cache)).isDirectory()).to.equal(true);
    expect(await files(cache)).to.have.length(1);
  });
});
