/**
 * Time as a dependency: the wall clock and the timers a component schedules
 * come in through one small interface, so tests drive them with a fake
 * clock (test/support/fake-clock.ts) instead of waiting. Decision code does
 * not take a Clock: it takes plain `nowMs` values from whoever holds one.
 */

declare const timerBrand: unique symbol;

/** A scheduled timer, only good for passing back to the clock that made it. */
export interface Timer {
  readonly [timerBrand]: true;
}

/** How a timer is scheduled. */
export interface TimerOptions {
  /**
   * True: the timer does not keep the process alive (Node's `unref`), for
   * housekeeping that must not hold a stopping program open.
   */
  readonly unref?: boolean;
}

/** A wall clock in Unix ms, and timers on it. */
export interface Clock {
  /** Unix ms. */
  now(): number;
  /**
   * Runs `fn` once after `ms` (at least 1). A delay past what Node's timers
   * hold (2^31-1 ms, about 24.8 days) is held that long instead of firing at once.
   */
  setTimeout(fn: () => void, ms: number, opts?: TimerOptions): Timer;
  /** Cancels a timeout; undefined and fired timers are ignored. */
  clearTimeout(timer: Timer | undefined): void;
  /** Runs `fn` every `ms` (at least 1) until cleared. */
  setInterval(fn: () => void, ms: number, opts?: TimerOptions): Timer;
  /** Cancels an interval; undefined is ignored. */
  clearInterval(timer: Timer | undefined): void;
  /**
   * Resolves after `ms`, or as soon as `signal` aborts (at once if it already
   * has). Never rejects: a loop checks its signal after waking.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** Longest delay Node's timers honour; a longer one would fire after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Clamps a delay to what a timer can hold (non-numbers become 1 ms, as Node does). */
export function timerDelayMs(ms: number): number {
  if (!(ms >= 1)) return 1;
  return Math.min(ms, MAX_TIMER_MS);
}

type NodeTimer = ReturnType<typeof globalThis.setTimeout>;

const asTimer = (t: NodeTimer): Timer => t as unknown as Timer;
const asNode = (t: Timer | undefined): NodeTimer | undefined => t as unknown as NodeTimer | undefined;

/**
 * `Clock.sleep` built on a clock's own timers: shared by the system clock
 * and fakes, so both wake the same way on abort.
 */
export function sleepOn(
  clock: Pick<Clock, "setTimeout" | "clearTimeout">,
  ms: number,
  signal?: AbortSignal,
): Promise<void> {
  if (signal?.aborted === true) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      clock.clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = clock.setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/** Node's wall clock and timers. */
export const systemClock: Clock = Object.freeze({
  now: () => Date.now(),
  setTimeout: (fn: () => void, ms: number, opts?: TimerOptions): Timer => {
    const t = globalThis.setTimeout(fn, timerDelayMs(ms));
    if (opts?.unref === true) t.unref();
    return asTimer(t);
  },
  clearTimeout: (timer: Timer | undefined): void => {
    globalThis.clearTimeout(asNode(timer));
  },
  setInterval: (fn: () => void, ms: number, opts?: TimerOptions): Timer => {
    const t = globalThis.setInterval(fn, timerDelayMs(ms));
    if (opts?.unref === true) t.unref();
    return asTimer(t);
  },
  clearInterval: (timer: Timer | undefined): void => {
    globalThis.clearInterval(asNode(timer));
  },
  sleep: (ms: number, signal?: AbortSignal): Promise<void> => sleepOn(systemClock, ms, signal),
});
