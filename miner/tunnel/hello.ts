/**
 * The miner's answer to a router's Challenge: a Hello signed by the hotkey
 * over (nonce, router id, timestamp, hotkey) as tunnel.proto specifies, plus
 * the checks a miner makes on the challenge itself. Pure: the clock reading
 * comes in as an argument.
 */
import type { Hotkey } from "../../common/identity.js";
import { signHello } from "../../common/signing.js";
import type { Challenge, Hello, ModelOffer } from "../../gen/tensorclaw/v1/tunnel.js";

/** The tunnel protocol version this miner speaks. */
export const MINER_PROTOCOL_VERSION = 1;

/** Clock difference to the router above which the miner warns (the router's window is ~30 s). */
export const CLOCK_SKEW_WARN_MS = 10_000;

/** Why a challenge cannot be answered, or undefined when it can. */
export function challengeFault(c: Challenge): string | undefined {
  if (c.protocolVersion < MINER_PROTOCOL_VERSION) return `unsupported protocol version ${c.protocolVersion}`;
  if (c.nonce.length === 0) return "the challenge has no nonce";
  if (c.routerId === "") return "the challenge names no router id";
  return undefined;
}

/** Our clock minus the router's at the challenge, or undefined when the router did not say. */
export function clockSkewMs(c: Challenge, nowMs: number): number | undefined {
  return c.serverTimeMs > 0n ? nowMs - Number(c.serverTimeMs) : undefined;
}

/**
 * The signed Hello answering `c` at `nowMs`, bound to the TLS connection
 * when `channelBinding` (its tls-exporter value) is given.
 */
export function buildHello(
  c: Challenge,
  key: Hotkey,
  offers: readonly ModelOffer[],
  nowMs: number,
  softwareVersion: string,
  channelBinding?: Uint8Array,
): Hello {
  const binding = Buffer.from(channelBinding ?? []);
  return {
    hotkey: key.address,
    signature: Buffer.from(signHello(key, c.nonce, c.routerId, nowMs, binding)),
    timestampMs: BigInt(nowMs),
    models: [...offers],
    softwareVersion,
    protocolVersion: MINER_PROTOCOL_VERSION,
    channelBinding: binding,
  };
}
