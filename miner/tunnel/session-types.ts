/**
 * The contract between a miner-side TunnelSession and the TunnelClient that
 * runs it: what a session needs (TunnelSessionDeps) and how its tunnel
 * ended (SessionEnd), which the client turns into a reconnect decision.
 */

import type { Clock } from "../../common/clock.js";
import type { FrameChannel } from "../../common/frame-channel.js";
import type { Hotkey } from "../../common/identity.js";
import type { Logger } from "../../common/logger.js";
import type { ModelOffer, RejectReason } from "../../gen/tensorclaw/v1/tunnel.js";
import type { ConcurrencyPolicy } from "../adaptive-concurrency.js";
import type { Backend } from "../backend/backend.js";

/** How a tunnel ended. */
export type SessionEnd =
  /** Never got to Accept: no challenge, a broken handshake, or the transport failed. */
  | { readonly kind: "not_established"; readonly reason: string }
  /** The Challenge named a router id other than the one expected: no Hello was signed. */
  | { readonly kind: "wrong_router"; readonly message: string }
  /** The router refused the Hello. */
  | {
      readonly kind: "rejected";
      readonly reason: RejectReason;
      readonly message: string;
      readonly retryAfterMs: number;
    }
  /** A live tunnel ended without Drain (router gone, network, protocol fault, stop()). */
  | { readonly kind: "closed"; readonly connectedForMs: number; readonly reason: string }
  /** The router drained the tunnel and suggested when to come back. */
  | {
      readonly kind: "drained";
      readonly connectedForMs: number;
      readonly reconnectAfterMs: number;
      readonly reason: string;
    };

/** What a session needs. */
export interface TunnelSessionDeps {
  readonly channel: FrameChannel;
  readonly hotkey: Hotkey;
  readonly backend: Backend;
  /** The models to offer right now. */
  readonly offers: () => readonly ModelOffer[];
  /** Learns each model's concurrency from its requests (adaptive-concurrency.ts); absent: nothing learned. */
  readonly concurrency?: ConcurrencyPolicy;
  /** Wall clock (signs the Hello, measures uptime) and the timers of the session and its requests. */
  readonly clock: Clock;
  readonly logger: Logger;
  readonly softwareVersion: string;
  /**
   * Vets the router id a Challenge names before anything is signed for it:
   * undefined to answer, else why not (router-guard.ts). The Hello signs
   * this id, so a wrong one must never reach the signer.
   */
  readonly vetRouterId: (routerId: string) => string | undefined;
  /** How long to wait for the Challenge, then for Accept. */
  readonly handshakeTimeoutMs: number;
  /** Called once when the router accepts, with its session id. */
  readonly onLive?: (sessionId: string) => void;
}
