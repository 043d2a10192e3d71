/**
 * A Clock for tests: time stands still until the test moves it with
 * `advance`, which fires the timers that came due, in order. A component
 * given one behaves as with the system clock, only without waiting.
 */
import { type Clock, sleepOn, type Timer, type TimerOptions, timerDelayMs } from "../../common/clock.js";

/** A Unix ms start far from 0, so code that treats 0 as "never" is not fooled. */
export const FAKE_CLOCK_START_MS = 1_700_000_000_000;

interface Entry {
  readonly id: number;
  readonly fn: () => void;
  /** Repeats every this many ms; undefined for a timeout. */
  readonly everyMs: number | undefined;
  readonly unref: boolean;
  dueMs: number;
  /** Breaks ties between timers due at once: scheduling order (a repeat counts as a new scheduling). */
  order: number;
}

/** What is scheduled, for assertions. */
export interface ScheduledTimer {
  /** Ms from now until it fires. */
  readonly inMs: number;
  readonly repeats: boolean;
  readonly unref: boolean;
}

/** A lets-pending-work-run turn: every promise continuation runs before a setImmediate callback. */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** A manually driven Clock. */
export class FakeClock implements Clock {
  #now: number;
  #nextId = 1;
  #nextOrder = 0;
  /** Pending timers by id. */
  readonly #timers = new Map<number, Entry>();
  readonly #onSchedule = new Set<() => void>();

  constructor(startMs = FAKE_CLOCK_START_MS) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number, opts?: TimerOptions): Timer {
    return this.#add(fn, ms, undefined, opts);
  }

  clearTimeout(timer: Timer | undefined): void {
    if (timer !== undefined) this.#timers.delete((timer as unknown as { id: number }).id);
  }

  setInterval(fn: () => void, ms: number, opts?: TimerOptions): Timer {
    return this.#add(fn, ms, timerDelayMs(ms), opts);
  }

  clearInterval(timer: Timer | undefined): void {
    this.clearTimeout(timer);
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal);
  }

  /** Timers waiting to fire, soonest first. */
  scheduled(): ScheduledTimer[] {
    return this.#ordered().map((e) => ({
      inMs: e.dueMs - this.#now,
      repeats: e.everyMs !== undefined,
      unref: e.unref,
    }));
  }

  /** Number of timers waiting to fire. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Resolves once at least `n` timers are pending (now, or when one is
   * scheduled): how a test knows a component went back to waiting.
   */
  untilPending(n = 1): Promise<void> {
    if (this.#timers.size >= n) return Promise.resolve();
    return new Promise((resolve) => {
      const check = () => {
        if (this.#timers.size < n) return;
        this.#onSchedule.delete(check);
        resolve();
      };
      this.#onSchedule.add(check);
    });
  }

  /**
   * Moves time forward by `ms`, firing every timer that comes due on the
   * way, in due order (ties in scheduling order), with `now()` reading each
   * timer's due time while it runs. Before each timer and at the end, pending
   * promise continuations run, so a timer that a callback (or the code it
   * wakes) schedules fires too if it is due within the window.
   */
  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`advance needs a non-negative ms, got ${ms}`);
    const target = this.#now + ms;
    for (;;) {
      await turn();
      const next = this.#ordered()[0];
      if (next === undefined || next.dueMs > target) break;
      this.#now = next.dueMs;
      if (next.everyMs === undefined) this.#timers.delete(next.id);
      else {
        next.dueMs += next.everyMs;
        next.order = this.#nextOrder++;
      }
      next.fn();
    }
    this.#now = target;
  }

  #add(fn: () => void, ms: number, everyMs: number | undefined, opts: TimerOptions | undefined): Timer {
    const id = this.#nextId++;
    this.#timers.set(id, {
      id,
      fn,
      everyMs,
      unref: opts?.unref === true,
      dueMs: this.#now + timerDelayMs(ms),
      order: this.#nextOrder++,
    });
    for (const check of [...this.#onSchedule]) check();
    return Object.freeze({ id }) as unknown as Timer;
  }

  #ordered(): Entry[] {
    return [...this.#timers.values()].sort((a, b) => a.dueMs - b.dueMs || a.order - b.order);
  }
}
