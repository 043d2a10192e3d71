import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { isValidEvent } from "../../router/ledger/ledger.js";
import type { UsageEvent, UsageSink } from "../../router/usage/event.js";
import { newUsageOrigin, UsageSequencer } from "../../router/usage/sequence.js";

class Collect implements UsageSink {
  readonly events: UsageEvent[] = [];
  record(event: UsageEvent): void {
    this.events.push(event);
  }
}

function event(requestId: string, minerHotkey: string): UsageEvent {
  return {
    requestId,
    minerHotkey,
    model: "m",
    promptTokens: 1,
    completionTokens: 2,
    outcome: "completed",
    startedAtMs: 1,
    finishedAtMs: 2,
  };
}

describe("usage sequencer (origin + per-miner seq)", () => {
  it("numbers events per miner from 0 in hand-off order, under one origin", () => {
    const inner = new Collect();
    const s = new UsageSequencer(inner, "feedc0de00000001");
    for (const [id, hk] of [
      ["r1", "a"],
      ["r2", "b"],
      ["r3", "a"],
      ["r4", "a"],
      ["r5", "b"],
    ] as const) {
      s.record(event(id, hk));
    }
    expect(inner.events.map((e) => [e.requestId, e.minerHotkey, e.origin, e.seq])).to.deep.equal([
      ["r1", "a", "feedc0de00000001", 0],
      ["r2", "b", "feedc0de00000001", 0],
      ["r3", "a", "feedc0de00000001", 1],
      ["r4", "a", "feedc0de00000001", 2],
      ["r5", "b", "feedc0de00000001", 1],
    ]);
    // The rest of the event is handed on unchanged, and the ledger accepts the key.
    expect(inner.events[0]).to.deep.include(event("r1", "a"));
    for (const e of inner.events) expect(isValidEvent(e)).to.equal(true);
  });

  it("starts over from 0 under a new origin (a new process)", () => {
    const inner = new Collect();
    new UsageSequencer(inner, "aaaa").record(event("r1", "a"));
    new UsageSequencer(inner, "bbbb").record(event("r2", "a"));
    expect(inner.events.map((e) => [e.origin, e.seq])).to.deep.equal([
      ["aaaa", 0],
      ["bbbb", 0],
    ]);
  });

  it("draws a 16-hex-character origin from the injected random source", () => {
    expect(newUsageOrigin((n) => Buffer.alloc(n, 0xab))).to.equal("abababababababab");
    const a = newUsageOrigin();
    expect(a).to.match(/^[0-9a-f]{16}$/);
    expect(newUsageOrigin()).not.to.equal(a);
  });

  it("refuses an origin that would not fit a key name", () => {
    for (const bad of ["", "a:b", "a b", "x".repeat(65)]) {
      expect(() => new UsageSequencer(new Collect(), bad)).to.throw(TensorClawError);
    }
  });
});
