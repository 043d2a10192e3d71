import { expect } from "chai";
import type { Chain } from "../../common/chain/chain.js";
import { TensorClawError } from "../../common/errors.js";
import { parseValidatorCommand } from "../../validator/config.js";
import { SIMULATED_SUBNET, SimulatedChain, simulatedBlock } from "../../validator/simulated-chain.js";
import { planWeights } from "../../validator/weights-plan.js";

const SELF = "5VALIDATOR";
const GENESIS = 1_700_000_000_000;

function chainWith(mode: "set-weights" | "commit-reveal", listed: () => string[], now = () => GENESIS) {
  return new SimulatedChain({
    mode,
    selfHotkey: SELF,
    hotkeys: async () => listed(),
    nowMs: now,
    genesisMs: GENESIS,
  });
}

describe("validator simulated chain", () => {
  it("registers the validator at uid 0 with the only permit, then each scored hotkey once, keeping uids", async () => {
    let listed = ["5B", "5A", "5B"];
    const chain = chainWith("set-weights", () => listed);
    const first = await chain.readMetagraph(92);
    expect(first.neurons.map((n) => [n.uid, n.hotkey, n.validatorPermit, n.lastUpdate])).to.deep.equal([
      [0, SELF, true, 0],
      [1, "5A", false, 0],
      [2, "5B", false, 0],
    ]);
    // A newcomer is appended; one that left keeps its uid, as on a real subnet.
    listed = ["5C", "5B", SELF];
    const second = await chain.readMetagraph(92);
    expect(second.neurons.map((n) => `${n.uid}:${n.hotkey}`)).to.deep.equal([
      `0:${SELF}`,
      "1:5A",
      "2:5B",
      "3:5C",
    ]);
  });

  it("stops registering at the subnet's 256 uids", async () => {
    const many = Array.from({ length: 300 }, (_, i) => `5M${String(i).padStart(3, "0")}`);
    const mg = await chainWith("set-weights", () => many).readMetagraph(92);
    expect(mg.neurons).to.have.length(256);
    expect(mg.neurons.at(-1)).to.include({ uid: 255, hotkey: "5M254" });
  });

  it("has plausible hyperparameters; commit-reveal follows the mode, the runtime's version 4 either way", async () => {
    const off = await chainWith("set-weights", () => []).readMetagraph(7);
    const on = await chainWith("commit-reveal", () => []).readMetagraph(7);
    expect(off.netuid).to.equal(7);
    expect(off.commitRevealEnabled).to.equal(false);
    expect(on.commitRevealEnabled).to.equal(true);
    for (const mg of [off, on]) {
      expect(mg).to.include({
        tempo: 360,
        revealPeriodEpochs: 1,
        weightsSetRateLimit: 100,
        commitRevealVersion: 4,
        blockTimeMs: 12_000,
        minAllowedWeights: 1,
      });
    }
  });

  it("derives the block from the wall clock and 12 s blocks", async () => {
    let now = GENESIS + 10_000 * 12_000 + 11_999;
    const chain = chainWith(
      "set-weights",
      () => [],
      () => now,
    );
    expect((await chain.readMetagraph(92)).block).to.equal(10_000);
    now += 1;
    expect((await chain.readMetagraph(92)).block).to.equal(10_001);
    expect(simulatedBlock(GENESIS - 5_000, GENESIS)).to.equal(0);
    // The default genesis puts today's blocks in mainnet's range (millions).
    expect(simulatedBlock(Date.UTC(2026, 0, 1))).to.be.within(5_000_000, 10_000_000);
    expect(SIMULATED_SUBNET.genesisMs).to.be.below(Date.UTC(2026, 0, 1));
  });

  it("plans set_weights, or a timelocked commit with version 4, for the validator's uid", async () => {
    const w = { uids: [1], values: [65_535] };
    const set = await chainWith("set-weights", () => ["5A"]).readMetagraph(92);
    expect(planWeights(set, SELF, [], w).action).to.deep.equal({ kind: "set", uid: 0 });
    const tl = await chainWith("commit-reveal", () => ["5A"]).readMetagraph(92);
    expect(planWeights(tl, SELF, [], w).action).to.deep.equal({ kind: "timelock", uid: 0, version: 4 });
  });

  it("refuses every write with an error naming the call", async () => {
    // Called through the interface, as the weights step would.
    const chain: Chain = chainWith("commit-reveal", () => []);
    const calls: [string, () => Promise<unknown>][] = [
      ["set_weights", () => chain.setWeights(92, [1], [1], 0n)],
      ["commit_weights", () => chain.commitWeights(92, `0x${"00".repeat(32)}`)],
      ["commit_timelocked_weights", () => chain.commitTimelockedWeights(92, new Uint8Array(1), 1n, 4)],
      ["reveal_weights", () => chain.revealWeights(92, [1], [1], [1], 0n)],
    ];
    for (const [name, call] of calls) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, name).to.be.instanceOf(Error);
      expect((err as Error).message).to.contain(`simulated chain cannot ${name}`);
    }
  });
});

describe("validator config: --simulate-chain", () => {
  const router = ["--router", "grpc://127.0.0.1:1"];
  const refused = (argv: string[]): string => {
    try {
      parseValidatorCommand(argv, {});
    } catch (err) {
      expect(err).to.be.instanceOf(TensorClawError);
      return (err as Error).message;
    }
    return expect.fail("expected a config_invalid error");
  };

  it("defaults to off and takes set-weights or commit-reveal with --dry-run and no --chain", () => {
    expect(parseValidatorCommand([...router, "--dry-run"], {}).config.simulateChain).to.equal("off");
    for (const mode of ["set-weights", "commit-reveal"]) {
      const c = parseValidatorCommand([...router, "--dry-run", "--simulate-chain", mode], {}).config;
      expect(c.simulateChain).to.equal(mode);
    }
    expect(
      parseValidatorCommand([...router, "--simulate-chain", "off", "--chain", "ws://127.0.0.1:9944"], {})
        .config.simulateChain,
    ).to.equal("off");
  });

  it("refuses it without --dry-run, with --chain, or with an unknown mode, naming the setting", () => {
    expect(refused([...router, "--simulate-chain", "commit-reveal"])).to.match(
      /invalid setting --simulate-chain: needs --dry-run/,
    );
    expect(
      refused([...router, "--simulate-chain", "set-weights", "--chain", "ws://127.0.0.1:9944", "--dry-run"]),
    ).to.match(/invalid setting --simulate-chain: cannot be used with --chain/);
    expect(refused([...router, "--dry-run", "--simulate-chain", "on"])).to.match(
      /--simulate-chain.*must be one of/,
    );
  });
});
