import { expect } from "chai";
import { chooseSlot, type SlotOccupancy } from "../../router/tunnel/slot-choice.js";

const at = (over: Partial<SlotOccupancy>): SlotOccupancy => ({
  held: 0,
  spareHeldByModel: false,
  spareTaken: false,
  maxConcurrency: 2,
  ...over,
});

describe("tunnel slot choice: a probe is a user request until the model is full", () => {
  it("gives users and probes alike an ordinary slot while one is free", () => {
    for (const probe of [false, true]) {
      expect(chooseSlot(at({ held: 0 }), probe)).to.equal("ordinary");
      expect(chooseSlot(at({ held: 1 }), probe)).to.equal("ordinary");
      // The spare slot, held by another model's probe, changes nothing for this model.
      expect(chooseSlot(at({ held: 1, spareTaken: true }), probe)).to.equal("ordinary");
    }
  });

  it("gives a probe the spare slot only when every ordinary slot is taken", () => {
    expect(chooseSlot(at({ held: 2 }), true)).to.equal("spare");
    expect(chooseSlot(at({ held: 2 }), false)).to.equal(undefined);
  });

  it("keeps one spare slot per tunnel: a second probe of a full model finds none", () => {
    expect(chooseSlot(at({ held: 3, spareHeldByModel: true, spareTaken: true }), true)).to.equal(undefined);
    // Another model's probe holds it: this full model cannot have it either.
    expect(chooseSlot(at({ held: 2, spareTaken: true }), true)).to.equal(undefined);
  });

  it("does not count the spare slot's probe against the model's ordinary slots", () => {
    // Two held, one of them the spare probe: one ordinary slot is free, for a user or a probe.
    const o = at({ held: 2, spareHeldByModel: true, spareTaken: true });
    expect(chooseSlot(o, false)).to.equal("ordinary");
    expect(chooseSlot(o, true)).to.equal("ordinary");
    expect(chooseSlot(at({ held: 3, spareHeldByModel: true, spareTaken: true }), false)).to.equal(undefined);
  });
});
