import { randomBytes } from "node:crypto";
import { u8aToHex } from "@polkadot/util";
import { blake2AsU8a } from "@polkadot/util-crypto";
import type { Hotkey } from "./identity.js";
import { isValidHotkey, verifyHotkeySignature } from "./identity.js";
import type { ReplayCache } from "./replay-cache.js";

const encoder = new TextEncoder();

function hex(bytes: Uint8Array): string {
  return u8aToHex(bytes, -1, false);
}

/** The fields a miner signs to answer a tunnel challenge (see tunnel.proto). */
export interface HelloFields {
  readonly nonce: Uint8Array;
  readonly routerId: string;
  readonly timestampMs: number;
  readonly hotkey: string;
  /** Hello.channel_binding (common/channel-binding.ts); absent or empty when there is none. */
  readonly channelBinding?: Uint8Array;
}

/**
 * The exact bytes signed in a tunnel Hello. A channel binding adds a sixth
 * line; without one the bytes are the five lines miners signed before the
 * binding existed, so their hellos still verify.
 */
export function helloPayload(f: HelloFields): Uint8Array {
  const binding =
    f.channelBinding === undefined || f.channelBinding.length === 0 ? "" : `\n${hex(f.channelBinding)}`;
  return encoder.encode(
    `tensorclaw/v1/tunnel-hello\n${hex(f.nonce)}\n${f.routerId}\n${f.timestampMs}\n${f.hotkey}${binding}`,
  );
}

/** Signs a Hello with the miner's hotkey (bound to its TLS connection when `channelBinding` is given). */
export function signHello(
  key: Hotkey,
  nonce: Uint8Array,
  routerId: string,
  timestampMs: number,
  channelBinding?: Uint8Array,
): Uint8Array {
  return key.sign(helloPayload({ nonce, routerId, timestampMs, hotkey: key.address, channelBinding }));
}

/** Why a signed message was refused. */
export type SignatureFault = "malformed" | "bad_signature" | "stale" | "replayed";

/** Options for checking a Hello. */
export interface HelloCheck {
  readonly nowMs: number;
  /** Largest accepted |now - timestamp|. */
  readonly freshnessMs: number;
  /** Hellos already accepted (keyed by signature). */
  readonly replay: ReplayCache;
}

/**
 * Verifies a Hello against the challenge this router sent on this stream.
 * Returns null when it is good, else the fault.
 */
export function checkHello(f: HelloFields, signature: Uint8Array, check: HelloCheck): SignatureFault | null {
  if (!isValidHotkey(f.hotkey) || signature.length !== 64 || !Number.isSafeInteger(f.timestampMs)) {
    return "malformed";
  }
  if (Math.abs(check.nowMs - f.timestampMs) > check.freshnessMs) return "stale";
  if (!verifyHotkeySignature(helloPayload(f), signature, f.hotkey)) return "bad_signature";
  if (!check.replay.remember(`hello:${hex(signature)}`, check.nowMs)) return "replayed";
  return null;
}

/** gRPC metadata keys of a signed validator call (see probe.proto). */
export const VALIDATOR_METADATA = Object.freeze({
  hotkey: "x-tc-hotkey",
  timestampMs: "x-tc-timestamp-ms",
  requestId: "x-tc-request-id",
  signature: "x-tc-signature",
  routerId: "x-tc-router-id",
});

const REQUEST_ID_RE = /^[A-Za-z0-9_-]{8,64}$/;

/** The fields of a signed validator call. */
export interface ValidatorCallFields {
  /** The id of the router the call is for (its --router-id): another router refuses it. */
  readonly routerId: string;
  /** Full gRPC method path, e.g. "/tensorclaw.v1.ProbeService/Probe". */
  readonly method: string;
  readonly hotkey: string;
  readonly timestampMs: number;
  readonly requestId: string;
  /** The serialized request message. */
  readonly requestBytes: Uint8Array;
}

/**
 * The exact bytes signed for a validator call. The router id comes right
 * after the tag, so a call signed for one router never verifies on another
 * (a router id holds no newline: common/router-id.ts).
 */
export function validatorCallPayload(f: ValidatorCallFields): Uint8Array {
  const digest = hex(blake2AsU8a(f.requestBytes, 256));
  return encoder.encode(
    `tensorclaw/v1/validator-call\n${f.routerId}\n${f.method}\n${f.hotkey}\n${f.timestampMs}\n${f.requestId}\n${digest}`,
  );
}

/** A fresh random request id for a validator call. */
export function newRequestId(): string {
  return randomBytes(16).toString("base64url");
}

/**
 * Signs a validator call for the router `routerId`; returns the metadata
 * entries to attach. `requestId` defaults to a fresh random id.
 */
export function signValidatorCall(
  key: Hotkey,
  routerId: string,
  method: string,
  requestBytes: Uint8Array,
  timestampMs: number,
  requestId: string = newRequestId(),
): Record<string, string> {
  const sig = key.sign(
    validatorCallPayload({ routerId, method, hotkey: key.address, timestampMs, requestId, requestBytes }),
  );
  return {
    [VALIDATOR_METADATA.routerId]: routerId,
    [VALIDATOR_METADATA.hotkey]: key.address,
    [VALIDATOR_METADATA.timestampMs]: String(timestampMs),
    [VALIDATOR_METADATA.requestId]: requestId,
    [VALIDATOR_METADATA.signature]: hex(sig),
  };
}

/** Options for checking a validator call. */
export interface ValidatorCallCheck {
  /** This router's id: a call signed for any other is refused. */
  readonly routerId: string;
  readonly nowMs: number;
  readonly freshnessMs: number;
  /** Request ids already used (keyed per hotkey). */
  readonly replay: ReplayCache;
}

/** Result of checking a validator call's metadata. */
export type ValidatorCallResult =
  | { ok: true; hotkey: string }
  | { ok: false; fault: SignatureFault | "wrong_router"; detail: string };

/**
 * Checks the metadata of a validator call against the method and the exact
 * request bytes received. `get` reads one metadata value (undefined if absent).
 */
export function checkValidatorCall(
  get: (key: string) => string | undefined,
  method: string,
  requestBytes: Uint8Array,
  check: ValidatorCallCheck,
): ValidatorCallResult {
  const hotkey = get(VALIDATOR_METADATA.hotkey);
  const ts = get(VALIDATOR_METADATA.timestampMs);
  const requestId = get(VALIDATOR_METADATA.requestId);
  const sigText = get(VALIDATOR_METADATA.signature);
  const routerId = get(VALIDATOR_METADATA.routerId);
  if (hotkey === undefined || ts === undefined || requestId === undefined || sigText === undefined) {
    return { ok: false, fault: "malformed", detail: "missing validator signature metadata (x-tc-*)" };
  }
  if (routerId === undefined) {
    return {
      ok: false,
      fault: "malformed",
      detail: "missing x-tc-router-id: calls are signed for one router (see probe.proto)",
    };
  }
  // Before the signature is checked: a precise answer for a call meant for another router.
  if (routerId !== check.routerId) {
    return {
      ok: false,
      fault: "wrong_router",
      detail: `this call is signed for router ${JSON.stringify(routerId.slice(0, 128))}; this router is ${JSON.stringify(check.routerId)}`,
    };
  }
  if (!isValidHotkey(hotkey))
    return { ok: false, fault: "malformed", detail: "x-tc-hotkey is not an SS58 hotkey" };
  if (!/^\d{1,16}$/.test(ts))
    return { ok: false, fault: "malformed", detail: "x-tc-timestamp-ms is not a number" };
  if (!REQUEST_ID_RE.test(requestId)) {
    return { ok: false, fault: "malformed", detail: "x-tc-request-id must be 8-64 chars of [A-Za-z0-9_-]" };
  }
  const sigHex = sigText.startsWith("0x") ? sigText.slice(2) : sigText;
  if (!/^[0-9a-fA-F]{128}$/.test(sigHex)) {
    return { ok: false, fault: "malformed", detail: "x-tc-signature must be 64 bytes of hex" };
  }
  const timestampMs = Number(ts);
  if (Math.abs(check.nowMs - timestampMs) > check.freshnessMs) {
    return { ok: false, fault: "stale", detail: "x-tc-timestamp-ms is outside the freshness window" };
  }
  const payload = validatorCallPayload({ routerId, method, hotkey, timestampMs, requestId, requestBytes });
  if (!verifyHotkeySignature(payload, Buffer.from(sigHex, "hex"), hotkey)) {
    return { ok: false, fault: "bad_signature", detail: "the signature does not verify" };
  }
  if (!check.replay.remember(`call:${hotkey}:${requestId}`, check.nowMs)) {
    return { ok: false, fault: "replayed", detail: "this request id was already used" };
  }
  return { ok: true, hotkey };
}
