/**
 * Awaiting a condition that another process makes true (a miner connected,
 * usage flushed to the ledger): poll with a deadline, and on failure say what
 * was awaited and what was last seen.
 */

/**
 * Calls `check` every `everyMs` until it returns a value other than
 * undefined, and resolves with it. A throwing check counts as "not yet".
 * Rejects after `timeoutMs`, naming `what` and the last error or value.
 */
export async function until<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs: number,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "nothing yet";
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
      last = "condition false";
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${last})`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
