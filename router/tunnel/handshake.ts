/**
 * The router's side of a tunnel handshake (tunnel.proto): send the
 * Challenge, give the miner `helloTimeoutMs` to answer with a Hello, judge
 * it (hello.ts), ask the admission hook, and answer Reject when any
 * of that fails. An admitted Hello goes back to the TunnelSession, which
 * sends Accept and goes live. Runs once per tunnel, before any request.
 */
import type { Clock, Timer } from "../../common/clock.js";
import type { ChannelCloseKind } from "../../common/frame-channel.js";
import type { Logger } from "../../common/logger.js";
import type { ReplayCache } from "../../common/replay-cache.js";
import { type Hello, RejectReason, type RouterFrame } from "../../gen/tensorclaw/v1/tunnel.js";
import { judgeHello, type Offer, TUNNEL_PROTOCOL_VERSION } from "./hello.js";
import type { AdmitHotkey, TunnelTimings } from "./options.js";
import type { SessionPhase } from "./types.js";

/** `retry_after_ms` of the Reject sent when the admission check itself fails. */
const ADMISSION_RETRY_AFTER_MS = 5_000;
/** Least `retry_after_ms` when the router-wide hello budget is spent. */
const BUSY_RETRY_AFTER_MS = 1_000;
/** `retry_after_ms` when the hotkey already holds its most tunnels (one must close first). */
const TUNNELS_FULL_RETRY_AFTER_MS = 30_000;

/** What a handshake depends on (a part of the session's deps). */
export interface HandshakeDeps {
  readonly routerId: string;
  readonly nonce: Uint8Array;
  readonly clock: Clock;
  readonly timings: TunnelTimings;
  readonly replay: ReplayCache;
  readonly admit: AdmitHotkey;
  readonly logger: Logger;
  /** Takes one hello check from the router-wide budget: 0 when granted, else ms until one is free. */
  readonly helloBudget: (nowMs: number) => number;
  /** Why this hotkey may not open one more live tunnel, or undefined when it may. */
  readonly tunnelRoom: (hotkey: string) => string | undefined;
  /** This tunnel's tls-exporter value as the router sees it (FrameChannel.channelBinding). */
  readonly channelBinding?: Uint8Array | undefined;
}

/** What a handshake needs from the session it opens. */
export interface HandshakeHost {
  /** Where the session is in its life; "admitting" while a Hello is judged. */
  phase(): SessionPhase;
  /** Queues a frame to the miner. */
  send(kind: NonNullable<RouterFrame["kind"]>): void;
  /** Closes the tunnel (TunnelSession.close). */
  close(kind: ChannelCloseKind, reason: string): void;
  /** The Hello is valid and its hotkey admitted: the session sends Accept and goes live. */
  accepted(hotkey: string, offers: readonly Offer[], softwareVersion: string): void;
}

/** The handshake of one tunnel, from Challenge to Accept or Reject. */
export class TunnelHandshake {
  readonly #d: HandshakeDeps;
  readonly #host: HandshakeHost;
  #helloTimer: Timer | undefined;

  constructor(deps: HandshakeDeps, host: HandshakeHost) {
    this.#d = deps;
    this.#host = host;
  }

  /** Sends the challenge and starts the hello timer. */
  start(): void {
    const t = this.#d.timings;
    this.#host.send({
      $case: "challenge",
      value: {
        nonce: Buffer.from(this.#d.nonce),
        routerId: this.#d.routerId,
        protocolVersion: TUNNEL_PROTOCOL_VERSION,
        helloTimeoutMs: t.helloTimeoutMs,
        serverTimeMs: BigInt(this.#d.clock.now()),
      },
    });
    this.#helloTimer = this.#d.clock.setTimeout(
      () => this.#host.close("timeout", `no Hello within ${t.helloTimeoutMs} ms`),
      t.helloTimeoutMs,
      { unref: true },
    );
  }

  /**
   * Judges the miner's Hello, then asks the admission hook; rejects, or hands
   * the verified hotkey to the session. The session is "admitting" meanwhile.
   */
  async onHello(hello: Hello): Promise<void> {
    // Checked before the signature: refusing costs nothing, verifying costs ~0.7 ms.
    const waitMs = this.#d.helloBudget(this.#d.clock.now());
    if (waitMs > 0) {
      this.#reject(
        RejectReason.REJECT_REASON_UNAVAILABLE,
        "the router is checking too many hellos right now; retry later",
        Math.max(waitMs, BUSY_RETRY_AFTER_MS),
      );
      return;
    }
    const verdict = judgeHello(hello, {
      nonce: this.#d.nonce,
      routerId: this.#d.routerId,
      nowMs: this.#d.clock.now(),
      freshnessMs: this.#d.timings.freshnessMs,
      replay: this.#d.replay,
      channelBinding: this.#d.channelBinding,
    });
    if (!verdict.ok) {
      this.#reject(verdict.reason, verdict.message);
      return;
    }
    let admitted: boolean;
    try {
      admitted = await this.#d.admit(verdict.hotkey);
    } catch (err) {
      this.#d.logger.warn({ err, hotkey: verdict.hotkey }, "tunnel admission check failed");
      this.#reject(
        RejectReason.REJECT_REASON_UNAVAILABLE,
        "admission check unavailable; retry later",
        ADMISSION_RETRY_AFTER_MS,
      );
      return;
    }
    if (this.#host.phase() !== "admitting") return; // closed while we waited
    if (!admitted) {
      this.#reject(RejectReason.REJECT_REASON_NOT_ADMITTED, `hotkey ${verdict.hotkey} is not admitted`);
      return;
    }
    // Counted and taken in one synchronous step (accepted() goes live at once), so two hellos
    // judged at the same time cannot both take the last room.
    const full = this.#d.tunnelRoom(verdict.hotkey);
    if (full !== undefined) {
      this.#reject(RejectReason.REJECT_REASON_UNAVAILABLE, full, TUNNELS_FULL_RETRY_AFTER_MS);
      return;
    }
    this.#d.clock.clearTimeout(this.#helloTimer);
    this.#host.accepted(verdict.hotkey, verdict.offers, hello.softwareVersion);
  }

  /** Stops the hello timer (the session closed). */
  stop(): void {
    this.#d.clock.clearTimeout(this.#helloTimer);
  }

  #reject(reason: RejectReason, message: string, retryAfterMs = 0): void {
    if (this.#host.phase() === "closed") return;
    this.#host.send({ $case: "reject", value: { reason, message, retryAfterMs } });
    const kind: ChannelCloseKind =
      reason === RejectReason.REJECT_REASON_INVALID_HELLO ||
      reason === RejectReason.REJECT_REASON_UNSUPPORTED_VERSION
        ? "invalid"
        : reason === RejectReason.REJECT_REASON_UNAVAILABLE
          ? "going_away"
          : "refused";
    this.#host.close(kind, message);
  }
}
