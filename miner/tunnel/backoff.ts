/**
 * Reconnect pacing for tunnel clients: full-jitter exponential backoff
 * (delay drawn uniformly from [0, min(cap, base * 2^attempt))), the scheme
 * that spreads a crowd of miners reconnecting to a restarted router instead
 * of having them arrive in waves. The attempt counter resets only after a
 * connection stayed up for `stableAfterMs`, so a router that accepts and then
 * drops at once cannot make miners hammer it at the base rate.
 *
 * Everything here is pure: the clock and the random source come in as
 * arguments.
 */

/** Backoff parameters. */
export interface BackoffPolicy {
  /** First ceiling of the jitter window, in ms. */
  readonly baseMs: number;
  /** Largest ceiling, in ms. */
  readonly capMs: number;
  /** A connection up at least this long resets the attempt counter. */
  readonly stableAfterMs: number;
}

/** The policy the miner uses unless told otherwise: 1 s base, 30 s cap, stable after 30 s. */
export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({
  baseMs: 1000,
  capMs: 30_000,
  stableAfterMs: 30_000,
});

/** How many failed attempts in a row preceded the next one. */
export interface BackoffState {
  readonly attempt: number;
}

/** Where a fresh client starts. */
export const INITIAL_BACKOFF: BackoffState = Object.freeze({ attempt: 0 });

/** The jitter window's ceiling for `attempt`: min(cap, base * 2^attempt). */
export function backoffCeilingMs(policy: BackoffPolicy, attempt: number): number {
  // 2^31 already exceeds any sane cap; clamping the exponent avoids Infinity.
  return Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 31));
}

/**
 * The delay before the next attempt: uniform in [0, ceiling). `random`
 * returns a number in [0, 1) like Math.random.
 */
export function backoffDelayMs(policy: BackoffPolicy, state: BackoffState, random: () => number): number {
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.floor(r * backoffCeilingMs(policy, state.attempt));
}

/**
 * The state after a connection attempt ended. `connectedForMs` is how long
 * the tunnel was live (accepted), or undefined when it never got that far.
 * A stable connection starts over at attempt 0 (so the next delay is at most
 * `baseMs`); anything shorter counts as one more failure.
 */
export function afterDisconnect(
  policy: BackoffPolicy,
  state: BackoffState,
  connectedForMs: number | undefined,
): BackoffState {
  if (connectedForMs !== undefined && connectedForMs >= policy.stableAfterMs) return INITIAL_BACKOFF;
  // Stop counting once the cap is reached; the number only feeds the ceiling.
  const saturated = backoffCeilingMs(policy, state.attempt) >= policy.capMs;
  return { attempt: saturated ? state.attempt : state.attempt + 1 };
}
