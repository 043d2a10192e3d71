// The README cannot rot: every flag and environment variable a program
// declares has a row in that program's table (with the default --help shows),
// no row names a setting that is gone, and every `tensorclaw` command in its
// shell blocks names a real program and parses with that program's own parser.
import { expect } from "chai";
import { COMMANDS } from "../../cli/main.js";
import { envName, type OptionSpec, parseCommand } from "../../common/config.js";
import {
  codeSpans,
  flagTable,
  PROGRAMS,
  README,
  readmeCommands,
  readmeSection,
  readmeShellCommands,
  resolveProgram,
  shownDefault,
} from "../support/readme.js";

const TOP_LEVEL = new Set(["--help", "-h", "help", "--version"]);

describe("README", () => {
  it("covers every command of the CLI", () => {
    const documented = new Set(PROGRAMS.map((p) => p.name.split(" ")[0]));
    for (const cmd of COMMANDS) expect(documented.has(cmd.name), cmd.name).to.equal(true);
  });

  for (const program of PROGRAMS) {
    describe(`tensorclaw ${program.name}`, () => {
      const section = readmeSection(README, program.name) ?? "";
      const rows = flagTable(section);

      it("has its own section with a flag table", () => {
        expect(section, `### \`tensorclaw ${program.name}\``).to.not.equal("");
        expect(rows).to.not.be.empty;
      });

      it("documents every flag with its environment variable and default", () => {
        for (const [key, spec] of Object.entries(program.options) as [string, OptionSpec][]) {
          const row = rows.find((r) => codeSpans(r.flag).includes(`--${spec.flag}`));
          expect(row, `row for --${spec.flag}`).to.not.equal(undefined);
          const env = envName(spec);
          expect(codeSpans(row?.env ?? ""), `env of --${spec.flag}`).to.deep.equal(
            env === undefined ? [] : [env],
          );
          const def = shownDefault(program, key);
          if (def !== undefined)
            expect(codeSpans(row?.default ?? ""), `default of --${spec.flag}`).to.include(def);
        }
      });

      it("names no flag or variable the program does not declare", () => {
        const flags = new Set(Object.values(program.options).map((s) => `--${s.flag}`));
        const everyEnv = new Set(
          PROGRAMS.flatMap((p) => Object.values(p.options).map(envName)).filter((e) => e !== undefined),
        );
        for (const row of rows) {
          for (const f of codeSpans(row.flag)) expect(flags.has(f), `${f} in the table`).to.equal(true);
          for (const e of codeSpans(row.env)) expect(everyEnv.has(e), `${e} in the table`).to.equal(true);
        }
      });

      it("shows a command that runs it (not only --help)", () => {
        const runs = readmeCommands(section).filter(
          (c) => resolveProgram(c.argv)?.program === program && !c.argv.includes("--help"),
        );
        expect(runs, `a \`tensorclaw ${program.name} …\` line in its section`).to.not.be.empty;
      });

      it("has --help shown in the README", () => {
        const help = readmeCommands(README).filter(
          (c) => resolveProgram(c.argv)?.program === program && c.argv.includes("--help"),
        );
        expect(help).to.not.be.empty;
      });
    });
  }

  it("finds the commands of its shell blocks (parser sanity)", () => {
    const lines = readmeCommands(README).map((c) => c.argv.join(" "));
    expect(lines).to.include("dev");
    expect(lines).to.include("router tiers list --redis-url redis://127.0.0.1:6379");
    expect(lines).to.include(
      "router --host 0.0.0.0 --http-port 8080 --grpc-port 50051 --redis-url redis://127.0.0.1:6379 --validators 5F...validatorHotkey",
    );
  });

  for (const cmd of readmeCommands(README)) {
    it(`\`${cmd.line}\` names a real program and parses`, () => {
      const [first] = cmd.argv;
      if (first !== undefined && TOP_LEVEL.has(first)) {
        expect(cmd.argv).to.have.length(1);
        return;
      }
      const resolved = resolveProgram(cmd.argv);
      expect(resolved, `program of ${cmd.argv.join(" ")}`).to.not.equal(undefined);
      if (resolved === undefined) return;
      const { program, args } = resolved;
      // With --help the CLI prints help without the program's own checks; its flags must still exist.
      if (args.includes("--help") || args.includes("-h")) {
        parseCommand(program.options, program.defaults, args, {});
        return;
      }
      program.checkPositionals(program.parse(args, {}).positionals);
    });
  }

  it("exports only variables some program reads", () => {
    const everyEnv = new Set(
      PROGRAMS.flatMap((p) => Object.values(p.options).map(envName)).filter((e) => e !== undefined),
    );
    const exported = readmeShellCommands(README)
      .filter((c) => c.words[0] === "export")
      .map((c) => (c.words[1] ?? "").split("=")[0]);
    expect(exported).to.not.be.empty;
    for (const name of exported) expect(everyEnv.has(name as string), name).to.equal(true);
  });
});
