import { expect } from "chai";
import { MAX_TIMER_MS, systemClock, type Timer, timerDelayMs } from "../../common/clock.js";
import { FAKE_CLOCK_START_MS, FakeClock } from "../support/fake-clock.js";

describe("fake clock", () => {
  it("stands still until advanced, then fires due timers in due order, ties in scheduling order", async () => {
    const clock = new FakeClock();
    const fired: string[] = [];
    const at = (name: string) => () => fired.push(`${name}@${clock.now() - FAKE_CLOCK_START_MS}`);
    clock.setTimeout(at("c"), 30);
    clock.setTimeout(at("a"), 10);
    clock.setTimeout(at("b1"), 20);
    clock.setTimeout(at("b2"), 20);
    clock.setTimeout(at("late"), 31);
    expect(clock.now()).to.equal(FAKE_CLOCK_START_MS);
    expect(clock.pending).to.equal(5);
    await clock.advance(30);
    expect(fired).to.deep.equal(["a@10", "b1@20", "b2@20", "c@30"]);
    expect(clock.now()).to.equal(FAKE_CLOCK_START_MS + 30);
    expect(clock.scheduled()).to.deep.equal([{ inMs: 1, repeats: false, unref: false }]);
    await clock.advance(1);
    expect(fired.at(-1)).to.equal("late@31");
    expect(clock.pending).to.equal(0);
  });

  it("fires timers that callbacks schedule during the advance, if they come due within it", async () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    clock.setTimeout(() => {
      fired.push(clock.now());
      clock.setTimeout(() => fired.push(clock.now()), 5); // due at 15: inside the window
      clock.setTimeout(() => fired.push(clock.now()), 50); // due at 60: outside it
    }, 10);
    await clock.advance(20);
    expect(fired).to.deep.equal([10, 15]);
    await clock.advance(40);
    expect(fired).to.deep.equal([10, 15, 60]);
  });

  it("lets async code a timer wakes run and schedule its next wait within the same advance", async () => {
    const clock = new FakeClock(0);
    const woke: number[] = [];
    const loop = (async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(10);
        await Promise.resolve(); // more continuations between the wake and the next timer
        woke.push(clock.now());
      }
    })();
    await clock.advance(25);
    expect(woke).to.deep.equal([10, 20]);
    await clock.advance(5);
    await loop;
    expect(woke).to.deep.equal([10, 20, 30]);
  });

  it("repeats an interval until cleared, also from inside its own callback", async () => {
    const clock = new FakeClock(0);
    const ticks: number[] = [];
    const timer: Timer = clock.setInterval(() => {
      ticks.push(clock.now());
      if (ticks.length === 3) clock.clearInterval(timer);
    }, 7);
    expect(clock.scheduled()).to.deep.equal([{ inMs: 7, repeats: true, unref: false }]);
    await clock.advance(100);
    expect(ticks).to.deep.equal([7, 14, 21]);
    expect(clock.pending).to.equal(0);
  });

  it("cancels cleared timeouts; clearing undefined or a fired timer does nothing", async () => {
    const clock = new FakeClock(0);
    let fired = 0;
    const a = clock.setTimeout(() => fired++, 5);
    const b = clock.setTimeout(() => fired++, 6, { unref: true });
    expect(clock.scheduled().map((t) => t.unref)).to.deep.equal([false, true]);
    clock.clearTimeout(a);
    clock.clearTimeout(undefined);
    await clock.advance(10);
    expect(fired).to.equal(1);
    clock.clearTimeout(b);
    expect(clock.pending).to.equal(0);
  });

  it("holds delays as Node does: under 1 ms is 1 ms, past 2^31-1 ms is 2^31-1 ms", async () => {
    const clock = new FakeClock(0);
    const fired: number[] = [];
    clock.setTimeout(() => fired.push(clock.now()), 0);
    clock.setTimeout(() => fired.push(clock.now()), Number.NaN);
    clock.setTimeout(() => fired.push(clock.now()), 0xffffffff);
    await clock.advance(1);
    expect(fired).to.deep.equal([1, 1]);
    await clock.advance(MAX_TIMER_MS - 2);
    expect(fired).to.have.length(2);
    await clock.advance(1);
    expect(fired).to.deep.equal([1, 1, MAX_TIMER_MS]);
    expect(timerDelayMs(-5)).to.equal(1);
    expect(timerDelayMs(250)).to.equal(250);
  });

  it("sleep resolves at its time, or early on abort (at once if already aborted), and never rejects", async () => {
    const clock = new FakeClock(0);
    let slept = false;
    const nap = clock.sleep(100).then(() => {
      slept = true;
    });
    await clock.advance(99);
    expect(slept).to.equal(false);
    await clock.advance(1);
    await nap;
    expect(slept).to.equal(true);

    const ac = new AbortController();
    const interrupted = clock.sleep(1_000_000, ac.signal);
    expect(clock.pending).to.equal(1);
    ac.abort(new Error("stop"));
    await interrupted;
    expect(clock.now()).to.equal(100);
    expect(clock.pending, "the aborted sleep's timer is cleared").to.equal(0);
    await clock.sleep(5, ac.signal);
    expect(clock.pending).to.equal(0);
  });

  it("untilPending resolves once something is waiting on the clock", async () => {
    const clock = new FakeClock(0);
    let waiting = false;
    const seen = clock.untilPending(2).then(() => {
      waiting = true;
    });
    clock.setTimeout(() => {}, 10);
    await Promise.resolve();
    expect(waiting).to.equal(false);
    clock.setInterval(() => {}, 10);
    await seen;
    expect(waiting).to.equal(true);
    await clock.untilPending(1);
  });

  it("refuses to go back in time", async () => {
    const clock = new FakeClock(0);
    let err: unknown;
    await clock.advance(-1).catch((e: unknown) => {
      err = e;
    });
    expect(err).to.be.instanceOf(RangeError);
  });
});

describe("system clock", () => {
  it("reads the wall clock", () => {
    const before = Date.now();
    const now = systemClock.now();
    expect(now).to.be.within(before, Date.now());
  });

  it("holds a delay past 2^31-1 ms instead of firing it at once, as Node's bare timer would", async () => {
    const fired: string[] = [];
    const long = [2 ** 31, 0xffffffff].map((ms) => systemClock.setTimeout(() => fired.push(`${ms}`), ms));
    // A short timer scheduled after them: Node would run overflowed (1 ms) timers before it.
    await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5));
    expect(fired).to.deep.equal([]);
    for (const t of long) systemClock.clearTimeout(t);
  });

  it("unrefs a timer only when asked", () => {
    const plain = systemClock.setTimeout(() => {}, 60_000);
    const housekeeping = systemClock.setInterval(() => {}, 60_000, { unref: true });
    try {
      // Opaque to components; a Node Timeout underneath.
      expect((plain as unknown as NodeJS.Timeout).hasRef()).to.equal(true);
      expect((housekeeping as unknown as NodeJS.Timeout).hasRef()).to.equal(false);
    } finally {
      systemClock.clearTimeout(plain);
      systemClock.clearInterval(housekeeping);
    }
  });

  it("fires an interval repeatedly until cleared", async () => {
    let ticks = 0;
    await new Promise<void>((resolve) => {
      const t = systemClock.setInterval(() => {
        if (++ticks < 3) return;
        systemClock.clearInterval(t);
        resolve();
      }, 1);
    });
    expect(ticks).to.equal(3);
  });

  it("sleep wakes early on abort", async () => {
    const ac = new AbortController();
    const started = Date.now();
    const nap = systemClock.sleep(60_000, ac.signal);
    ac.abort();
    await nap;
    expect(Date.now() - started).to.be.lessThan(1000);
  });
});
