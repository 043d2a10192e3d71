/** What the queue needs to know of one waiting request. */
export interface Waiter {
  /** Who is waiting (the API key's id; one name for every anonymous caller): the unit of fairness. */
  readonly account: string;
  /** When the wait ends unserved, on the caller's clock (ms). */
  readonly deadlineMs: number;
}

/** One line of waiters (requests for one model and kind): a ring of accounts, each with its own FIFO. */
interface Line<W extends Waiter> {
  /** Accounts with waiters, in the order they are served next (Map keeps insertion order). */
  readonly ring: Map<string, W[]>;
  size: number;
}

/**
 * Requests waiting for a free miner slot, per line (the caller names lines:
 * one per model and request kind), bounded in all by `maxWaiters`.
 *
 * Fair across accounts, FIFO within one: the next waiter served is the
 * oldest of the account at the front of the ring, and an account that was
 * served moves to the back. So an account with forty requests waiting and
 * one with a single request alternate; the forty cannot starve the one.
 *
 * Pure bookkeeping: no timers, no promises, no clock of its own (times come
 * in as arguments). The router's CapacityQueue (capacity-queue.ts) adds the
 * wake-ups and the timer.
 */
export class WaitQueue<W extends Waiter> {
  readonly #lines = new Map<string, Line<W>>();
  #size = 0;

  constructor(readonly maxWaiters: number) {
    if (!Number.isInteger(maxWaiters) || maxWaiters < 0) {
      throw new RangeError(`maxWaiters must be a whole number >= 0, not ${maxWaiters}`);
    }
  }

  /** Waiters in all lines. */
  get size(): number {
    return this.#size;
  }

  /** Waiters in one line. */
  depth(line: string): number {
    return this.#lines.get(line)?.size ?? 0;
  }

  /** The lines that have waiters. */
  lines(): IterableIterator<string> {
    return this.#lines.keys();
  }

  /** Adds `w` at the end of its account's FIFO in `line`; false (and nothing added) when the queue is full. */
  add(line: string, w: W): boolean {
    if (this.#size >= this.maxWaiters) return false;
    let l = this.#lines.get(line);
    if (l === undefined) {
      l = { ring: new Map(), size: 0 };
      this.#lines.set(line, l);
    }
    const fifo = l.ring.get(w.account);
    if (fifo === undefined) l.ring.set(w.account, [w]);
    else fifo.push(w);
    l.size++;
    this.#size++;
    return true;
  }

  /**
   * The waiter to serve next in `line`: the oldest of the first account in
   * the ring. Waiters in `skip` are passed over (each account's oldest one
   * not skipped is its candidate), for a caller that found the next one
   * cannot be served by what is free (one that excludes miners it already
   * tried) and looks further.
   */
  next(line: string, skip?: ReadonlySet<W>): W | undefined {
    const l = this.#lines.get(line);
    if (l === undefined) return undefined;
    for (const fifo of l.ring.values()) {
      if (skip === undefined) return fifo[0];
      const w = fifo.find((x) => !skip.has(x));
      if (w !== undefined) return w;
    }
    return undefined;
  }

  /** `w` got its slot: it leaves the queue and its account moves to the back of the ring. */
  served(line: string, w: W): boolean {
    return this.#drop(line, w, true);
  }

  /** `w` leaves the queue unserved (its client went away); its account keeps its place. */
  remove(line: string, w: W): boolean {
    return this.#drop(line, w, false);
  }

  /** Removes and returns every waiter whose deadline is at or before `nowMs`, with its line. */
  expire(nowMs: number): Array<{ readonly line: string; readonly waiter: W }> {
    const out: Array<{ line: string; waiter: W }> = [];
    for (const [line, l] of this.#lines) {
      for (const fifo of l.ring.values()) {
        for (const w of fifo) if (w.deadlineMs <= nowMs) out.push({ line, waiter: w });
      }
    }
    for (const { line, waiter } of out) this.#drop(line, waiter, false);
    return out;
  }

  /** The earliest deadline of any waiter; undefined when none waits. */
  nextDeadlineMs(): number | undefined {
    let min: number | undefined;
    for (const l of this.#lines.values()) {
      for (const fifo of l.ring.values()) {
        for (const w of fifo) if (min === undefined || w.deadlineMs < min) min = w.deadlineMs;
      }
    }
    return min;
  }

  #drop(line: string, w: W, rotate: boolean): boolean {
    const l = this.#lines.get(line);
    const fifo = l?.ring.get(w.account);
    const i = fifo === undefined ? -1 : fifo.indexOf(w);
    if (l === undefined || fifo === undefined || i < 0) return false;
    fifo.splice(i, 1);
    l.size--;
    this.#size--;
    if (fifo.length === 0) l.ring.delete(w.account);
    else if (rotate) {
      // Served: the account's turn is over; it waits behind every other account.
      l.ring.delete(w.account);
      l.ring.set(w.account, fifo);
    }
    if (l.size === 0) this.#lines.delete(line);
    return true;
  }
}
