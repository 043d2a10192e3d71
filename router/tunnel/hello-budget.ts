/**
 * How many Hello signatures the hub checks per second, all peers together.
 * Each check costs the router ~0.7 ms of CPU, so an unbounded stream of
 * hellos (valid or not) would take the event loop from everyone else. A
 * token bucket: `perSecond` tokens refill continuously, at most `perSecond`
 * are banked (a one-second burst). Pure apart from the clock reading
 * passed in.
 */
export class HelloBudget {
  readonly #perSecond: number;
  #tokens: number;
  #atMs: number | undefined;

  constructor(perSecond: number) {
    this.#perSecond = perSecond;
    this.#tokens = perSecond;
  }

  /**
   * Takes one check from the budget at `nowMs`: 0 when granted, else how
   * many ms until one is free (what the Reject's retry_after_ms says).
   */
  take(nowMs: number): number {
    if (this.#atMs !== undefined && nowMs > this.#atMs) {
      this.#tokens = Math.min(
        this.#perSecond,
        this.#tokens + ((nowMs - this.#atMs) * this.#perSecond) / 1000,
      );
    }
    if (this.#atMs === undefined || nowMs > this.#atMs) this.#atMs = nowMs;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.#tokens) * 1000) / this.#perSecond);
  }
}

/**
 * The address part of a channel's peer string, so every connection from one
 * host counts as one: "1.2.3.4:5678" → "1.2.3.4", "[::1]:5678" → "::1";
 * a bare address (the WebSocket adapter's, IPv6 included) is kept whole.
 */
export function peerAddress(peer: string): string {
  const bracketed = /^\[([^\]]*)\](?::\d+)?$/.exec(peer);
  if (bracketed !== null) return bracketed[1] as string;
  const first = peer.indexOf(":");
  if (first !== -1 && first === peer.lastIndexOf(":")) return peer.slice(0, first);
  return peer;
}
