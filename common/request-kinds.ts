/**
 * The kinds of inference request a model may offer (tunnel.proto,
 * ModelOffer.kinds and RequestKind), as the rest of the code names them.
 * Shared by the miner, which advertises them, and the router, which routes
 * a request only to a model that offers its kind.
 */
import { RequestKind } from "../gen/tensorclaw/v1/tunnel.js";

/** A kind of request: which field of InferenceRequest carries it. */
export type ModelKind = "chat" | "completion" | "embedding";

/** Every kind, in the order they are listed. */
export const MODEL_KINDS: readonly ModelKind[] = Object.freeze(["chat", "completion", "embedding"]);

/** What an offer with no kinds serves (miners that predate the field). */
export const CHAT_ONLY: readonly ModelKind[] = Object.freeze(["chat"]);

const FROM_PROTO: ReadonlyMap<number, ModelKind> = new Map([
  [RequestKind.REQUEST_KIND_CHAT, "chat"],
  [RequestKind.REQUEST_KIND_COMPLETION, "completion"],
  [RequestKind.REQUEST_KIND_EMBEDDING, "embedding"],
]);

const TO_PROTO: Readonly<Record<ModelKind, RequestKind>> = Object.freeze({
  chat: RequestKind.REQUEST_KIND_CHAT,
  completion: RequestKind.REQUEST_KIND_COMPLETION,
  embedding: RequestKind.REQUEST_KIND_EMBEDDING,
});

/**
 * The kinds an offer serves: empty means chat only; values this build does
 * not know (a newer peer's kinds) are ignored rather than refused, and
 * duplicates collapse. The result is in {@link MODEL_KINDS} order. An offer
 * whose only kinds are unknown serves nothing this router can send.
 */
export function kindsFromProto(kinds: readonly RequestKind[]): readonly ModelKind[] {
  if (kinds.length === 0) return CHAT_ONLY;
  const seen = new Set<ModelKind>();
  for (const k of kinds) {
    const known = FROM_PROTO.get(k);
    if (known !== undefined) seen.add(known);
  }
  if (seen.size === 1 && seen.has("chat")) return CHAT_ONLY;
  return Object.freeze(MODEL_KINDS.filter((k) => seen.has(k)));
}

/** The wire form of a set of kinds (chat only is sent as the empty list old routers understand too). */
export function kindsToProto(kinds: readonly ModelKind[]): RequestKind[] {
  if (kinds.length === 1 && kinds[0] === "chat") return [];
  return MODEL_KINDS.filter((k) => kinds.includes(k)).map((k) => TO_PROTO[k]);
}

/** One kind on the wire: its name, or undefined for UNSPECIFIED and values this build does not know. */
export function kindFromProto(kind: RequestKind): ModelKind | undefined {
  return FROM_PROTO.get(kind);
}

/** The wire value of one kind. */
export function kindToProto(kind: ModelKind): RequestKind {
  return TO_PROTO[kind];
}

/** Whether a model's kinds (absent: chat only) include `kind`. */
export function offersKind(kinds: readonly ModelKind[] | undefined, kind: ModelKind): boolean {
  return kinds === undefined ? kind === "chat" : kinds.includes(kind);
}
