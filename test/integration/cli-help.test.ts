import { expect } from "chai";
import { runCli } from "../support/cli.js";

describe("tensorclaw CLI (child process)", () => {
  it("prints the command list with --help", async () => {
    const r = await runCli(["--help"]);
    expect(r.code).to.equal(0);
    for (const cmd of ["router", "miner", "validator", "dev"])
      expect(r.stdout).to.match(new RegExp(`^  ${cmd} `, "m"));
  });

  const expected: Record<string, string[]> = {
    router: [
      "--host",
      "--http-port",
      "--grpc-port",
      "--redis-url",
      "--no-auth",
      "--chain",
      "--netuid",
      "--validators",
      "--user-salt",
    ],
    miner: [
      "--router",
      "--backend",
      "--backend-key",
      "--models",
      "--max-concurrency",
      "--transport",
      "--wallet",
      "--hotkey",
      "--wallet-path",
    ],
    validator: [
      "--router",
      "--wallet",
      "--hotkey",
      "--wallet-path",
      "--chain",
      "--netuid",
      "--probe-interval-s",
      "--weights-interval-s",
      "--redis-url",
      "--state-file",
      "--dry-run",
      "--once",
    ],
    dev: ["--miners", "--backend", "--http-port", "--grpc-port"],
  };
  for (const [cmd, flags] of Object.entries(expected)) {
    it(`${cmd} --help lists its flags`, async () => {
      const r = await runCli([cmd, "--help"]);
      expect(r.code).to.equal(0);
      for (const flag of flags) expect(r.stdout, flag).to.contain(`  ${flag}`);
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
