import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import { COMMANDS, topHelp } from "../../cli/main.js";
import { envName } from "../../common/config.js";
import { runCli } from "../support/cli.js";
import { README, readmeCommands, resolveProgram } from "../support/readme.js";

const REGISTER = fileURLToPath(new URL("../../bin/register.mjs", import.meta.url));
const TRACE = fileURLToPath(new URL("../support/module-trace.mjs", import.meta.url));
/**
 * Packages that `--help` has no use for and that cost tens to hundreds of ms
 * to load: servers, crypto, tokenizer, Redis, logging, metrics, the compiler.
 */
const HEAVY = [
  "@polkadot/",
  "@grpc/",
  "@bufbuild/",
  "gpt-tokenizer",
  "ioredis",
  "pino",
  "prom-client",
  "ws",
  "undici",
  "esbuild",
];

describe("tensorclaw CLI (child process)", () => {
  // The README's own `--help` lines, run as written: each prints the help of the
  // program it names, listing every flag and variable that program's config declares.
  const helpLines = readmeCommands(README).filter((c) => c.argv.includes("--help"));

  it("the README shows --help for the CLI and every program", () => {
    expect(helpLines.map((c) => c.argv.join(" "))).to.include("--help");
    for (const cmd of COMMANDS) {
      expect(
        helpLines.some((c) => c.argv[0] === cmd.name),
        `tensorclaw ${cmd.name} --help`,
      ).to.equal(true);
    }
  });

  for (const c of helpLines) {
    it(`\`${c.line}\` prints the help of what it names`, async () => {
      const r = await runCli(c.argv);
      expect(r.code, r.stderr).to.equal(0);
      const resolved = resolveProgram(c.argv);
      if (resolved === undefined) {
        for (const cmd of COMMANDS) expect(r.stdout).to.match(new RegExp(`^  ${cmd.name} `, "m"));
        return;
      }
      expect(r.stdout).to.match(new RegExp(`^Usage: tensorclaw ${resolved.program.name} `));
      for (const spec of Object.values(resolved.program.options)) {
        expect(r.stdout, `--${spec.flag}`).to.match(new RegExp(`^  --${spec.flag}\\b`, "m"));
        const env = envName(spec);
        if (env !== undefined) expect(r.stdout, env).to.contain(`[env ${env}]`);
      }
    });
  }

  describe("loads only what help needs", () => {
    let dir = "";
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "tc-help-trace-"));
    });
    after(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    for (const argv of [[], ...COMMANDS.map((c) => [c.name]), ["router", "tiers"], ["router", "models"]]) {
      const line = ["tensorclaw", ...argv, "--help"].join(" ");
      it(`\`${line}\` loads none of the heavy packages`, async () => {
        const trace = join(dir, `${argv.join("-") || "top"}.txt`);
        const r = await runCli([...argv, "--help"], { TENSORCLAW_MODULE_TRACE: trace }, 20_000, [
          "--import",
          REGISTER,
          "--import",
          TRACE,
        ]);
        expect(r.code, r.stderr).to.equal(0);
        const loaded = (await readFile(trace, "utf8")).trim().split("\n");
        // The trace works: it saw the command table itself.
        expect(loaded.some((url) => url.endsWith("/cli/main.ts"))).to.equal(true);
        const heavy = loaded.filter((url) => HEAVY.some((p) => url.includes(`/node_modules/${p}`)));
        expect(heavy).to.deep.equal([]);
      });
    }
  });

  it("prints the same help as each command of the table gives in process", async () => {
    expect((await runCli(["--help"])).stdout).to.equal(topHelp());
    for (const entry of COMMANDS) {
      let text = "";
      const cmd = await entry.load();
      expect(cmd.name).to.equal(entry.name);
      const code = await cmd.run(["--help"], {
        env: {},
        stdout: (t) => {
          text += t;
        },
        stderr: () => {},
      });
      expect(code).to.equal(0);
      const r = await runCli([entry.name, "--help"]);
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout, entry.name).to.equal(text);
    }
  });

  it("exits 2 naming the setting on a bad value", async () => {
    const r = await runCli(["router", "--grpc-port", "x"]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain("--grpc-port");
  });

  it("exits 2 on an unknown command", async () => {
    const r = await runCli(["mine"]);
    expect(r.code).to.equal(2);
    expect(r.stderr).to.contain('unknown command "mine"');
  });
});
