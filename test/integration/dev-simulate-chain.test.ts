// `tensorclaw dev --simulate-chain commit-reveal`, run for real: the dev
// network's dry-run validator plans weights against a simulated subnet with
// commit-reveal on and prints the timelocked commit it would make, with its
// drand reveal round and a well-formed ciphertext of the printed size.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { QUICKNET } from "../../validator/tlock-quicknet.js";
import { ProcessSet } from "../support/loop-process.js";
import { parseTlock } from "../support/tlock-decrypt.js";

const TIMELOCK_LINE =
  /would commit_timelocked_weights\(netuid 92, (\d+)-byte ciphertext of uids \[1\] values \[65535\], reveal_round (\d+), commit_reveal_version 4\) as uid 0;[^\n]*\n {2}ciphertext 0x([0-9a-f]+)\n/;

describe("tensorclaw dev --simulate-chain commit-reveal", function () {
  this.timeout(90_000);
  const procs = new ProcessSet();
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-dev-sim-"));
  });
  afterEach(async () => {
    await procs.killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it("prints the validator's timelocked commit: reveal round ahead of now, ciphertext of the printed size", async () => {
    const started = Date.now();
    const dev = procs.spawn(
      "dev",
      [
        "dev",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--data-dir",
        dir,
        "--miners",
        "1",
        "--probe-interval-s",
        "1",
        "--simulate-chain",
        "commit-reveal",
      ],
      { REDIS_URL: undefined },
    );
    // The first passes may come before the miner's first probe (nothing to weigh yet): wait for a commit.
    const m = (await dev.waitFor(TIMELOCK_LINE, 60_000, "stdout")) as unknown as string[];
    const [, size, round, hex] = m;
    const ct = Buffer.from(hex as string, "hex");
    expect(ct.length).to.equal(Number(size));
    parseTlock(ct); // throws unless it is a well-formed TLECiphertext
    // The reveal epoch's first block is 1 to 361 blocks ahead, aimed 3 blocks in.
    const roundAt = (ms: number) => Math.floor((ms - QUICKNET.genesisTimeSec * 1000) / 3000);
    expect(Number(round)).to.be.within(roundAt(started + 4 * 12_000), roundAt(Date.now() + 364 * 12_000));
    expect(dev.stdout).to.contain("and the timelocked commit it would make");
    dev.child.kill("SIGINT");
    expect(await dev.exited()).to.equal(0);
  });
});
