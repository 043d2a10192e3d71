import type { ReplayCache } from "../../common/replay-cache.js";
import { kindsFromProto, type ModelKind } from "../../common/request-kinds.js";
import { checkHello } from "../../common/signing.js";
import { type Hello, type ModelOffer, RejectReason } from "../../gen/tensorclaw/v1/tunnel.js";

/** The tunnel protocol version this router speaks (tunnel.proto describes 1). */
export const TUNNEL_PROTOCOL_VERSION = 1;

/** Bounds on what a miner may advertise, so a hello cannot make the router allocate without limit. */
export const OFFER_LIMITS = Object.freeze({
  maxModels: 256,
  maxModelIdLength: 256,
  maxConcurrency: 100_000,
  maxSoftwareVersionLength: 256,
});

/** A model as the session keeps it. */
export interface Offer {
  readonly id: string;
  readonly maxConcurrency: number;
  readonly contextLength: number;
  /** What kinds of request it serves (empty on the wire: chat only; unknown kinds dropped). */
  readonly kinds: readonly ModelKind[];
}

/** What a Hello is judged against. */
export interface HelloContext {
  readonly nonce: Uint8Array;
  readonly routerId: string;
  readonly nowMs: number;
  readonly freshnessMs: number;
  readonly replay: ReplayCache;
}

/** The verdict on a Hello (before the admission hook). */
export type HelloVerdict =
  | { readonly ok: true; readonly hotkey: string; readonly offers: readonly Offer[] }
  | { readonly ok: false; readonly reason: RejectReason; readonly message: string };

/**
 * Judges a Hello: protocol version, shape of the offers, then the signature
 * over this stream's challenge, freshness and replay (common/signing.ts).
 * Cheap checks come first so garbage never reaches the sr25519 verifier.
 */
export function judgeHello(hello: Hello, ctx: HelloContext): HelloVerdict {
  if (hello.protocolVersion < TUNNEL_PROTOCOL_VERSION) {
    return refuse(
      RejectReason.REJECT_REASON_UNSUPPORTED_VERSION,
      `protocol version ${hello.protocolVersion} is not supported; this router speaks ${TUNNEL_PROTOCOL_VERSION}`,
    );
  }
  if (hello.softwareVersion.length > OFFER_LIMITS.maxSoftwareVersionLength) {
    return refuse(RejectReason.REJECT_REASON_INVALID_HELLO, "software_version is too long");
  }
  const offers = validateOffers(hello.models);
  if (typeof offers === "string") return refuse(RejectReason.REJECT_REASON_INVALID_HELLO, offers);
  const ts = hello.timestampMs;
  const timestampMs =
    ts >= BigInt(Number.MIN_SAFE_INTEGER) && ts <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(ts) : Number.NaN;
  const fault = checkHello(
    { nonce: ctx.nonce, routerId: ctx.routerId, timestampMs, hotkey: hello.hotkey },
    hello.signature,
    { nowMs: ctx.nowMs, freshnessMs: ctx.freshnessMs, replay: ctx.replay },
  );
  switch (fault) {
    case null:
      return { ok: true, hotkey: hello.hotkey, offers };
    case "malformed":
      return refuse(
        RejectReason.REJECT_REASON_INVALID_HELLO,
        "malformed hello: hotkey must be SS58 (prefix 42), signature 64 bytes, timestamp a safe integer",
      );
    case "stale":
      return refuse(
        RejectReason.REJECT_REASON_STALE,
        `timestamp_ms is more than ${ctx.freshnessMs} ms away from the router clock (${ctx.nowMs})`,
      );
    case "bad_signature":
      return refuse(
        RejectReason.REJECT_REASON_BAD_SIGNATURE,
        "the signature does not verify for this hotkey and challenge",
      );
    case "replayed":
      return refuse(RejectReason.REJECT_REASON_REPLAYED, "this hello was already used");
  }
}

/**
 * Checks a list of model offers (Hello or ModelListUpdate). Returns the
 * offers, or a message naming the first fault.
 */
export function validateOffers(models: readonly ModelOffer[]): Offer[] | string {
  if (models.length > OFFER_LIMITS.maxModels) return `more than ${OFFER_LIMITS.maxModels} models offered`;
  const seen = new Set<string>();
  const out: Offer[] = [];
  for (const m of models) {
    if (m.id === "" || m.id.length > OFFER_LIMITS.maxModelIdLength) {
      return `model id must be 1-${OFFER_LIMITS.maxModelIdLength} characters`;
    }
    if (seen.has(m.id)) return `model ${JSON.stringify(m.id)} is offered twice`;
    if (m.maxConcurrency < 1 || m.maxConcurrency > OFFER_LIMITS.maxConcurrency) {
      return `model ${JSON.stringify(m.id)}: max_concurrency must be 1-${OFFER_LIMITS.maxConcurrency}`;
    }
    seen.add(m.id);
    out.push({
      id: m.id,
      maxConcurrency: m.maxConcurrency,
      contextLength: m.contextLength,
      kinds: kindsFromProto(m.kinds),
    });
  }
  return out;
}

function refuse(reason: RejectReason, message: string): HelloVerdict {
  return { ok: false, reason, message };
}
