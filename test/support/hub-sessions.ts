/**
 * Waiting for the router's view of its miners: the hub tells its watchers
 * after every change (`TunnelHub.onChange`), so a test re-checks then, and
 * never polls or sleeps.
 */
import type { TunnelHub } from "../../router/tunnel/hub.js";
import type { SessionView } from "../../router/tunnel/types.js";

/**
 * Resolves with the hub's sessions once `predicate` holds for them (checked
 * now and after every hub change). Rejects after `timeoutMs`, naming `what`
 * and the sessions last seen.
 */
export function waitForSessions(
  hub: TunnelHub,
  predicate: (s: readonly SessionView[]) => boolean,
  what = "the hub's sessions to match",
  timeoutMs = 15_000,
): Promise<readonly SessionView[]> {
  const now = hub.sessions();
  if (predicate(now)) return Promise.resolve(now);
  return new Promise((resolve, reject) => {
    const off = hub.onChange(() => {
      const s = hub.sessions();
      let ok: boolean;
      try {
        ok = predicate(s);
      } catch (err) {
        ok = false;
        off();
        clearTimeout(guard);
        reject(err);
      }
      if (!ok) return;
      off();
      clearTimeout(guard);
      resolve(s);
    });
    const guard = setTimeout(() => {
      off();
      reject(
        new Error(`timed out after ${timeoutMs} ms waiting for ${what}: ${JSON.stringify(hub.sessions())}`),
      );
    }, timeoutMs);
  });
}
