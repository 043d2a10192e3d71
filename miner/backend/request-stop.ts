/**
 * The abort signal of one request on the miner's hot path. It has the part
 * of AbortSignal that backends use (`aborted`, `reason`, "abort" listeners),
 * so an AbortSignal works wherever a StopSignal is asked for; creating an
 * AbortController instead costs an EventTarget per request, which measured
 * ~7 % of the miner's CPU on small requests (bench:api profile).
 */

/** What a backend call needs of its abort signal. */
export interface StopSignal {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: "abort", listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: "abort", listener: () => void): void;
}

/** A StopSignal and its trigger in one object. Listeners run once, in order, on the first abort. */
export class RequestStop implements StopSignal {
  aborted = false;
  reason: unknown = undefined;
  #listeners: (() => void)[] | undefined;

  addEventListener(_type: "abort", listener: () => void, _options?: { once?: boolean }): void {
    if (this.aborted) return;
    if (this.#listeners === undefined) this.#listeners = [listener];
    else this.#listeners.push(listener);
  }

  removeEventListener(_type: "abort", listener: () => void): void {
    const l = this.#listeners;
    const i = l === undefined ? -1 : l.indexOf(listener);
    if (i !== -1) l?.splice(i, 1);
  }

  /** Aborts with `reason`; later calls do nothing. */
  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const l = this.#listeners;
    this.#listeners = undefined;
    for (const fn of l ?? []) {
      try {
        fn();
      } catch (err) {
        // As EventTarget does: a throwing listener is reported, the others still run.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}
