import { expect } from "chai";
import { silentLogger } from "../../common/logger.js";
import { ChainAdmission, type SubnetReader } from "../../router/admission.js";
import { FakeClock } from "../support/fake-clock.js";

/** A metagraph that the test rewrites; counts its reads. */
class ScriptedSubnet implements SubnetReader {
  reads = 0;
  failing = false;
  hotkeys = ["5Miner"];

  async readMetagraph() {
    this.reads++;
    if (this.failing) throw new Error("chain unreachable");
    return { block: this.reads, neurons: this.hotkeys.map((hotkey) => ({ hotkey, validatorPermit: false })) };
  }
}

describe("chain admission refresh (on a fake clock)", () => {
  it("reads at start, then every refreshMs on an unref'd timer, keeping the last good snapshot, until stopped", async () => {
    const clock = new FakeClock(0);
    const subnet = new ScriptedSubnet();
    let refreshed = 0;
    const a = new ChainAdmission({
      reader: subnet,
      netuid: 92,
      refreshMs: 60_000,
      clock,
      logger: silentLogger(),
      onRefreshed: () => refreshed++,
    });
    expect(await a.start()).to.equal(true);
    expect(a.membership).to.deep.include({ block: 1, readAtMs: 0 });
    expect(clock.scheduled()).to.deep.equal([{ inMs: 60_000, repeats: true, unref: true }]);

    subnet.hotkeys = ["5Miner", "5Newcomer"];
    await clock.advance(59_999);
    expect(subnet.reads).to.equal(1);
    expect(a.admitMiner("5Newcomer")).to.equal(false);
    await clock.advance(1);
    expect(subnet.reads).to.equal(2);
    expect(a.admitMiner("5Newcomer")).to.equal(true);
    expect(a.membership).to.deep.include({ block: 2, readAtMs: 60_000 });

    subnet.failing = true;
    await clock.advance(60_000);
    expect(subnet.reads).to.equal(3);
    expect(a.membership?.readAtMs, "a failed read keeps the snapshot").to.equal(60_000);
    expect(refreshed).to.equal(2);

    a.stop();
    expect(clock.pending).to.equal(0);
    await clock.advance(600_000);
    expect(subnet.reads).to.equal(3);
  });
});
