import { expect } from "chai";
import { COMMANDS } from "../../cli/main.js";
import { envName } from "../../common/config.js";
import { runCli } from "../support/cli.js";
import { README, readmeCommands, resolveProgram } from "../support/readme.js";

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
