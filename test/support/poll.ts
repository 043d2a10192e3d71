/**
 * The one place tests poll. Only for state another process makes true and
 * that sends nothing this process can await: a child process's endpoints,
 * Redis coming back after a restart, a killed process leaving /proc.
 * In-process state has an event to wait on instead (TunnelHub.onChange via
 * hub-sessions.ts, TunnelClient.waitFor, FakeMiner.until, a fake clock).
 */
import { setTimeout as delay } from "node:timers/promises";

/** How to poll. */
export interface PollOptions {
  /** What is awaited, for the failure message ("three active miners"). */
  readonly what: string;
  /** Give up after this long. */
  readonly timeoutMs: number;
  /** Pause between checks (default 50 ms). */
  readonly intervalMs?: number;
}

/** A check's answer: the value awaited, or `undefined` / `false` for "not yet". */
type Polled<T> = T | undefined | false;

/**
 * Runs `check` until it answers something other than `undefined` or
 * `false`, and resolves with that. A check that throws counts as "not yet".
 * Rejects after `timeoutMs` with a message naming `what` and the last error
 * or "condition false".
 */
export async function pollUntil<T>(
  check: () => Polled<T> | Promise<Polled<T>>,
  opts: PollOptions,
): Promise<T> {
  const deadline = Date.now() + opts.timeoutMs;
  let last = "no check finished";
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
      last = "condition false";
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what} (last: ${last})`);
    }
    await delay(opts.intervalMs ?? 50);
  }
}
