// recordDurably: the promise the Business API awaits before it ends an
// answer. It must not resolve while the event exists only in memory (a
// SIGKILL then would lose what the user already received), and it must
// resolve once the event is in the ledger or fsynced in the spool.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as tick } from "node:timers/promises";
import { expect } from "chai";
import type { RecordResult, UsageLedger } from "../../router/ledger/ledger.js";
import type { UsageEvent } from "../../router/usage/event.js";
import { UsageRecorder } from "../../router/usage/recorder.js";
import { UsageSequencer } from "../../router/usage/sequence.js";
import { UsageSpool } from "../../router/usage/spool.js";
import { writerEvent } from "../support/ledger-events.js";

/** A ledger whose calls wait until released (or fail, when told to). */
class GatedLedger {
  readonly written: UsageEvent[] = [];
  fail = false;
  #gates: (() => void)[] = [];

  record(events: readonly UsageEvent[]): Promise<RecordResult> {
    if (this.fail) return Promise.reject(new Error("ledger down"));
    return new Promise((resolve) => {
      this.#gates.push(() => {
        this.written.push(...events);
        resolve({ counted: events.length, duplicates: 0, expired: 0, invalid: 0 });
      });
    });
  }

  /** Lets every waiting call finish. */
  release(): void {
    for (const g of this.#gates.splice(0)) g();
  }

  get waiting(): number {
    return this.#gates.length;
  }

  get asLedger(): UsageLedger {
    return this as unknown as UsageLedger;
  }
}

/** Whether `p` has resolved, after letting every queued tick run. */
async function isSettled(p: Promise<void>): Promise<boolean> {
  let done = false;
  void p.then(() => {
    done = true;
  });
  for (let i = 0; i < 5; i++) await tick();
  return done;
}

describe("usage recorder: durable recording", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-durable-"));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("resolves only once the event's batch is in the ledger", async () => {
    const ledger = new GatedLedger();
    const recorder = new UsageRecorder({ ledger: ledger.asLedger });
    const durable = recorder.recordDurably(writerEvent("d", 0, Date.now()));
    recorder.record(writerEvent("d", 1, Date.now()));
    for (let i = 0; i < 5 && ledger.waiting === 0; i++) await tick();
    expect(ledger.waiting, "a ledger call in flight").to.equal(1);
    expect(await isSettled(durable), "still only in memory").to.equal(false);
    ledger.release();
    expect(await isSettled(durable)).to.equal(true);
    expect(ledger.written.map((e) => e.requestId)).to.deep.equal(["d-0", "d-1"]);
    await recorder.close();
  });

  it("resolves once the event is fsynced in the spool while the ledger fails, and the spool holds it", async () => {
    const ledger = new GatedLedger();
    ledger.fail = true;
    const spool = await UsageSpool.open({ dir });
    const recorder = new UsageRecorder({ ledger: ledger.asLedger, spool, retryMinMs: 60_000 });
    await recorder.recordDurably(writerEvent("s", 0, Date.now()));
    expect(recorder.stats()).to.include({ spooled: 1, spoolDepth: 1 });
    await recorder.close();
    await spool.close();
    // What a restarted router would replay.
    const reopened = await UsageSpool.open({ dir });
    expect((await reopened.read(10))?.events.map((e) => e.requestId)).to.deep.equal(["s-0"]);
    await reopened.close();
  });

  it("resolves at once for an event it refuses or drops, and the queued one once written", async () => {
    const ledger = new GatedLedger();
    const recorder = new UsageRecorder({ ledger: ledger.asLedger, maxQueued: 1 });
    const queued = recorder.recordDurably(writerEvent("q", 0, Date.now()));
    const dropped = recorder.recordDurably(writerEvent("q", 1, Date.now()));
    const malformed = recorder.recordDurably({ ...writerEvent("q", 2, Date.now()), promptTokens: -1 });
    expect(await isSettled(dropped)).to.equal(true);
    expect(await isSettled(malformed)).to.equal(true);
    expect(recorder.stats()).to.include({ dropped: 1, invalid: 1 });
    expect(await isSettled(queued)).to.equal(false);
    const closing = recorder.close();
    ledger.release();
    await closing;
    expect(await isSettled(queued)).to.equal(true);
  });

  it("passes through the sequencer with the router's origin and seq", async () => {
    const ledger = new GatedLedger();
    const recorder = new UsageRecorder({ ledger: ledger.asLedger });
    const sink = new UsageSequencer(recorder, "origin1");
    const durable = sink.recordDurably(writerEvent("o", 0, Date.now()));
    for (let i = 0; i < 5 && ledger.waiting === 0; i++) await tick();
    expect(await isSettled(durable)).to.equal(false);
    ledger.release();
    await durable;
    expect(ledger.written.map((e) => [e.origin, e.seq])).to.deep.equal([["origin1", 0]]);
    await recorder.close();
  });
});
