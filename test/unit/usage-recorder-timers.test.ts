import { expect } from "chai";
import type { RecordResult, UsageLedger } from "../../router/ledger/ledger.js";
import type { UsageEvent } from "../../router/usage/event.js";
import { UsageRecorder } from "../../router/usage/recorder.js";
import { FakeClock } from "../support/fake-clock.js";
import { writerEvent } from "../support/ledger-events.js";

/** A ledger whose next calls fail, hang, or count, as scripted; records the clock of each call. */
class ScriptedLedger {
  readonly calls: number[] = [];
  readonly script: ("fail" | "hang")[] = [];
  counted = 0;

  record(events: readonly UsageEvent[], nowMs: number): Promise<RecordResult> {
    this.calls.push(nowMs);
    const next = this.script.shift();
    if (next === "fail") return Promise.reject(new Error("ledger down"));
    if (next === "hang") return new Promise(() => {});
    this.counted += events.length;
    return Promise.resolve({ counted: events.length, duplicates: 0, expired: 0, invalid: 0 });
  }

  get asLedger(): UsageLedger {
    return this as unknown as UsageLedger;
  }
}

describe("usage recorder timers (on a fake clock)", () => {
  it("without a spool, retries a failed batch after pauses that double up to the maximum", async () => {
    const clock = new FakeClock(0);
    const ledger = new ScriptedLedger();
    ledger.script.push("fail", "fail", "fail");
    const recorder = new UsageRecorder({ ledger: ledger.asLedger, clock, retryMinMs: 100, retryMaxMs: 300 });
    for (let i = 0; i < 3; i++) recorder.record(writerEvent("r", i, clock.now()));
    await clock.advance(0);
    expect(ledger.calls).to.deep.equal([0]);
    expect(clock.scheduled()).to.deep.equal([{ inMs: 100, repeats: false, unref: true }]);
    // Retries at +100, then +200, then +300 (the maximum), each from the failure before.
    for (const [pause, at] of [
      [100, 100],
      [200, 300],
      [300, 600],
    ] as const) {
      await clock.advance(pause - 1);
      expect(ledger.calls.at(-1), `no retry before ${at}`).to.be.lessThan(at);
      await clock.advance(1);
      expect(ledger.calls.at(-1)).to.equal(at);
    }
    await recorder.idle();
    expect(ledger.counted).to.equal(3);
    expect(recorder.stats()).to.include({ counted: 3, ledgerErrors: 3, queued: 0 });
    // The events waited 600 ms; caught up now.
    expect(recorder.lagMs()).to.equal(0);
    await recorder.close();
  });

  it("counts a ledger call that outlives the timeout as failed, reports the lag meanwhile, and retries", async () => {
    const clock = new FakeClock(0);
    const ledger = new ScriptedLedger();
    ledger.script.push("hang");
    const recorder = new UsageRecorder({
      ledger: ledger.asLedger,
      clock,
      ledgerTimeoutMs: 5000,
      retryMinMs: 100,
    });
    recorder.record(writerEvent("t", 0, clock.now()));
    await clock.advance(4999);
    expect(recorder.stats().ledgerErrors).to.equal(0);
    expect(recorder.lagMs()).to.equal(4999);
    await clock.advance(1);
    expect(recorder.stats().ledgerErrors).to.equal(1);
    await clock.advance(100);
    await recorder.idle();
    expect(ledger.calls).to.deep.equal([0, 5100]);
    expect(recorder.stats()).to.include({ counted: 1, queued: 0 });
    expect(clock.pending, "the timeout of the call that succeeded is cleared").to.equal(0);
    await recorder.close();
  });
});
