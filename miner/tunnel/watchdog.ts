/**
 * How long a miner-side tunnel waits for its router. Each handshake step
 * (the Challenge, then Accept or Reject) has a deadline; once live, a router
 * that sends nothing for several of its own ping intervals is taken for
 * gone. One timer serves both, and its expiry ends the tunnel with
 * "timeout". The session records when it last heard from the router (a
 * field write per message); the watchdog reads that only when its timer
 * fires, so it costs nothing per frame.
 */

import type { Clock, Timer } from "../../common/clock.js";

/** What the watchdog needs from its session. */
export interface WatchdogHost {
  /** When the last message from the router arrived (Unix ms). */
  lastHeardMs(): number;
  /** A deadline passed or the router went silent: end the tunnel. */
  expire(why: string): void;
}

/** The one timer of a miner-side tunnel session. */
export class TunnelWatchdog {
  readonly #host: WatchdogHost;
  readonly #clock: Clock;
  #timer: Timer | undefined;
  #silenceMs = 0;

  constructor(host: WatchdogHost, clock: Clock) {
    this.#host = host;
    this.#clock = clock;
  }

  /** Expires with `why` after `ms`, replacing any earlier deadline. */
  arm(ms: number, why: string): void {
    this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => this.#host.expire(why), ms, { unref: true });
  }

  /** Cancels the pending deadline or silence check. */
  stop(): void {
    this.#clock.clearTimeout(this.#timer);
  }

  /**
   * Live: expires once the router has said nothing for
   * `pingIntervalMs * (max(maxMissedPongs, 1) + 2)`. A router that stops
   * talking (a black-holed NAT mapping) is gone; its own pings are our
   * heartbeat.
   */
  watchSilence(pingIntervalMs: number, maxMissedPongs: number): void {
    this.#silenceMs = pingIntervalMs * (Math.max(maxMissedPongs, 1) + 2);
    this.#watchSilence();
  }

  #watchSilence(): void {
    const left = this.#host.lastHeardMs() + this.#silenceMs - this.#clock.now();
    if (left <= 0) {
      this.#host.expire("the router went silent");
      return;
    }
    this.#timer = this.#clock.setTimeout(() => this.#watchSilence(), left, { unref: true });
  }
}
