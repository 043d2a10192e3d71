import type { Clock } from "../../common/clock.js";
import { DEFAULT_MAX_MESSAGE_BYTES } from "../../common/frame-limits.js";
import type { Logger } from "../../common/logger.js";

/** Timing and size limits of the tunnel hub. Units are in the names. */
export interface TunnelTimings {
  /** How long a new stream may take to answer the challenge. */
  readonly helloTimeoutMs: number;
  /** Largest accepted |router clock - Hello.timestamp_ms|. */
  readonly freshnessMs: number;
  /** Interval between application pings (sent in Accept). */
  readonly pingIntervalMs: number;
  /** Consecutive unanswered pings that close a tunnel (sent in Accept). */
  readonly maxMissedPongs: number;
  /** Largest stream message either way; larger ones close the tunnel. */
  readonly maxMessageBytes: number;
  /** Flow-control credit each request starts with, in bytes of chunk payload. */
  readonly initialCreditBytes: number;
  /** How long in-flight requests may run after Drain before the tunnel is closed anyway. */
  readonly drainGraceMs: number;
  /** `Drain.reconnect_after_ms` suggested to miners. */
  readonly drainReconnectAfterMs: number;
  /** How long a cancelled request keeps its concurrency slot waiting for the miner's answer. */
  readonly cancelGraceMs: number;
  /** Least time between two ModelListUpdates applied; sooner ones merge into the next (session.ts). */
  readonly modelUpdateGapMs: number;
}

/** The defaults (tunnel.proto documents the 30 s freshness and 4 MiB message limit). */
export const DEFAULT_TUNNEL_TIMINGS: TunnelTimings = Object.freeze({
  helloTimeoutMs: 10_000,
  freshnessMs: 30_000,
  pingIntervalMs: 10_000,
  maxMissedPongs: 3,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  initialCreditBytes: 32 * 1024,
  drainGraceMs: 30_000,
  drainReconnectAfterMs: 1_000,
  cancelGraceMs: 5_000,
  modelUpdateGapMs: 100,
});

/**
 * Caps that keep one peer from taking the hub for itself (hardening: a
 * hotkey opening tunnel after tunnel, a host holding handshakes open, a
 * flood of hellos that each cost a signature check).
 */
export interface TunnelLimits {
  /** Live tunnels one hotkey may hold on this router; more hellos are refused UNAVAILABLE. */
  readonly maxTunnelsPerHotkey: number;
  /** Tunnels one remote address may have in their handshake at once; more are refused at once. */
  readonly maxPendingHandshakesPerAddress: number;
  /** Hello signature checks per second, all peers together (each costs ~0.7 ms of CPU). */
  readonly helloChecksPerSecond: number;
}

/** The defaults (README, "tensorclaw router"). */
export const DEFAULT_TUNNEL_LIMITS: TunnelLimits = Object.freeze({
  maxTunnelsPerHotkey: 4,
  maxPendingHandshakesPerAddress: 16,
  helloChecksPerSecond: 200,
});

/** Checks limits and fills defaults; throws a RangeError naming the bad field. */
export function resolveLimits(partial: Partial<TunnelLimits> | undefined): TunnelLimits {
  const l = { ...DEFAULT_TUNNEL_LIMITS, ...partial };
  for (const [name, value] of Object.entries(l)) {
    if (!Number.isInteger(value) || value < 1 || value > 1_000_000) {
      throw new RangeError(`tunnel limit ${name} must be an integer in [1, 1000000], got ${String(value)}`);
    }
  }
  return Object.freeze(l);
}

/** HTTP/2 keepalive ping interval of the tunnel's gRPC server. */
export const DEFAULT_GRPC_KEEPALIVE_TIME_MS = 30_000;
/** How long a gRPC keepalive ping may go unanswered before the connection is dropped. */
export const DEFAULT_GRPC_KEEPALIVE_TIMEOUT_MS = 10_000;
/** WebSocket ping interval of the tunnel endpoint; a socket that misses one pong is dropped. */
export const DEFAULT_WS_KEEPALIVE_MS = 30_000;

/** Decides whether a verified hotkey may serve (chain registration, allow-list, bans). */
export type AdmitHotkey = (hotkey: string) => boolean | Promise<boolean>;

/** Everything the hub depends on. */
export interface TunnelHubOptions {
  /** Stable identity of this router, signed by miners in their Hello. */
  readonly routerId: string;
  /** Wall clock and timers (hello, ping, drain, deadlines); default the system clock. */
  readonly clock?: Clock;
  /** Cryptographic random bytes (challenge nonces, session ids). */
  readonly randomBytes?: (n: number) => Uint8Array;
  readonly logger?: Logger;
  readonly timings?: Partial<TunnelTimings>;
  /** Per-hotkey, per-address and hello-rate caps; defaults DEFAULT_TUNNEL_LIMITS. */
  readonly limits?: Partial<TunnelLimits>;
  /** Admission hook; default admits every hotkey with a valid signature. */
  readonly admit?: AdmitHotkey;
}

/** Checks timings and fills defaults; throws a RangeError naming the bad field. */
export function resolveTimings(partial: Partial<TunnelTimings> | undefined): TunnelTimings {
  const t = { ...DEFAULT_TUNNEL_TIMINGS, ...partial };
  for (const [name, value] of Object.entries(t)) {
    if (!Number.isInteger(value) || value < 1 || value > 0xffffffff) {
      throw new RangeError(`tunnel timing ${name} must be an integer in [1, 2^32-1], got ${String(value)}`);
    }
  }
  if (t.maxMessageBytes < 1024) throw new RangeError("tunnel timing maxMessageBytes must be at least 1024");
  return Object.freeze(t);
}
