import { TensorClawError } from "../../common/errors.js";
import { MAX_EVENT_TOKENS, MAX_ID_LENGTH } from "../ledger/ledger.js";
import { USAGE_OUTCOMES, type UsageEvent } from "../usage/event.js";
import {
  type AccountSettings,
  type CreditEntry,
  GENERATION_TTL_MS,
  type GenerationRecord,
  type HoldRequest,
  type RequestApp,
} from "./billing.js";
import { MAX_CREDIT_MICROS, type Micros } from "./money.js";

/**
 * What the billing stores accept. Both implementations call these before
 * touching state, so a malformed event or entry is refused the same way
 * everywhere and never reaches a journal line or a Redis key name.
 */

/** What an API key id looks like (`key_<16 hex>` in practice): safe inside key names and journal lines. */
export const KEY_ID_PATTERN = /^[0-9A-Za-z_-]{1,64}$/;
/** Longest credit note, in characters. */
export const MAX_NOTE_LENGTH = 1000;
/** Longest cursor value, in characters. */
export const MAX_CURSOR_LENGTH = 1024;

// Control characters would corrupt logs, journal lines and script arguments.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding them is the point.
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/** True for a well-formed API key id. */
export function isKeyId(s: unknown): s is string {
  return typeof s === "string" && KEY_ID_PATTERN.test(s);
}

/** True for a request id, model id, entry id or cursor name: 1-256 characters, no control characters. */
export function isId(s: unknown): s is string {
  return typeof s === "string" && s.length > 0 && s.length <= MAX_ID_LENGTH && !CONTROL_CHARS.test(s);
}

/** True for a whole amount of micros in ±MAX_CREDIT_MICROS (`signed`) or 0..MAX_CREDIT_MICROS. */
export function isMicros(n: unknown, signed = false): n is Micros {
  return (
    typeof n === "number" &&
    Number.isSafeInteger(n) &&
    n <= MAX_CREDIT_MICROS &&
    (signed ? n >= -MAX_CREDIT_MICROS : n >= 0)
  );
}

function isCount(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0 && n <= MAX_EVENT_TOKENS;
}

function isTime(n: unknown): n is number {
  return typeof n === "number" && Number.isSafeInteger(n) && n >= 0;
}

function invalid(message: string): TensorClawError {
  return new TensorClawError("invalid_request", message);
}

/** Throws `invalid_request` unless `keyId` is a well-formed key id. */
export function checkKeyId(keyId: string): string {
  if (!isKeyId(keyId)) throw invalid("key id must be 1-64 characters of [0-9A-Za-z_-]");
  return keyId;
}

/** Throws `invalid_request` unless the settings are sane. */
export function checkSettings(s: AccountSettings): AccountSettings {
  if (typeof s !== "object" || s === null || typeof s.metered !== "boolean") {
    throw invalid("account settings need metered: true or false");
  }
  if (s.budgetDailyMicros !== null && !isMicros(s.budgetDailyMicros)) {
    throw invalid(`daily budget must be whole micros from 0 to ${MAX_CREDIT_MICROS}, or none`);
  }
  return Object.freeze({ metered: s.metered, budgetDailyMicros: s.budgetDailyMicros });
}

/** Throws `invalid_request` unless a credit entry is well formed. */
export function checkCreditEntry(e: CreditEntry): CreditEntry {
  if (typeof e !== "object" || e === null) throw invalid("credit entry must be an object");
  checkKeyId(e.keyId);
  if (!isId(e.id)) throw invalid(`credit entry id must be 1-${MAX_ID_LENGTH} visible characters`);
  if (!isMicros(e.amountMicros, true) || e.amountMicros === 0) {
    throw invalid(`credit amount must be whole micros, non-zero, at most ${MAX_CREDIT_MICROS} either way`);
  }
  if (typeof e.note !== "string" || e.note.length > MAX_NOTE_LENGTH || CONTROL_CHARS.test(e.note)) {
    throw invalid(`credit note must be at most ${MAX_NOTE_LENGTH} characters, no control characters`);
  }
  if (e.source !== "operator" && e.source !== "deposit")
    throw invalid("credit source must be operator or deposit");
  if (!isTime(e.atMs)) throw invalid("credit time must be whole ms");
  return {
    id: e.id,
    keyId: e.keyId,
    amountMicros: e.amountMicros,
    note: e.note,
    source: e.source,
    atMs: e.atMs,
  };
}

/** Throws `invalid_request` unless a hold request is well formed. */
export function checkHold(h: HoldRequest): HoldRequest {
  checkKeyId(h.keyId);
  if (!isId(h.requestId)) throw invalid(`request id must be 1-${MAX_ID_LENGTH} visible characters`);
  if (!isMicros(h.amountMicros)) throw invalid("hold amount must be whole micros >= 0");
  if (!isTime(h.nowMs)) throw invalid("hold time must be whole ms");
  if (!Number.isSafeInteger(h.ttlMs) || h.ttlMs < 1) throw invalid("hold lifetime must be whole ms >= 1");
  return h;
}

/** Throws `invalid_request` unless a cursor name and value are usable. */
export function checkCursor(name: string, value?: string): void {
  if (!isId(name)) throw invalid(`cursor name must be 1-${MAX_ID_LENGTH} visible characters`);
  if (value !== undefined && (typeof value !== "string" || value.length > MAX_CURSOR_LENGTH)) {
    throw invalid(`cursor value must be a string of at most ${MAX_CURSOR_LENGTH} characters`);
  }
}

/** One final usage event, checked and reduced to what settling needs. */
export interface SettleItem {
  readonly keyId: string;
  readonly requestId: string;
  /** The hold the cost comes off (a lease) when not the request's own (then it is removed). */
  readonly holdId: string | undefined;
  readonly model: string;
  /** Where the spend counts: the finish time, clamped to the settling clock. */
  readonly atMs: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly costMicros: Micros;
  /** The generation record; it also marks the request as settled until `expiresAtMs`. */
  readonly record: GenerationRecord;
  /** Finish time + the store's generation retention: the record (and the settled marker) lives until then. */
  readonly expiresAtMs: number;
}

/**
 * The settle item of an event at clock `nowMs`, or undefined when the event
 * carries no billing, is malformed in any field settling reads, or is so old
 * that its settled marker would already be gone (refusing it keeps a very
 * late replay from charging twice).
 */
export function settleItem(
  e: UsageEvent,
  nowMs: number,
  retentionMs: number = GENERATION_TTL_MS,
): SettleItem | undefined {
  if (typeof e !== "object" || e === null) return undefined;
  const b = e.billing;
  if (typeof b !== "object" || b === null) return undefined;
  if (!isKeyId(b.keyId) || !isMicros(b.costMicros) || !isMicros(b.holdMicros)) return undefined;
  if (b.ttftMs !== null && !(typeof b.ttftMs === "number" && Number.isFinite(b.ttftMs) && b.ttftMs >= 0)) {
    return undefined;
  }
  if (b.finishReason !== null && !isId(b.finishReason)) return undefined;
  if (typeof b.streamed !== "boolean") return undefined;
  if (b.holdId !== undefined && !isId(b.holdId)) return undefined;
  const app = appFrom(b.app);
  if (app === null) return undefined;
  if (!isId(e.requestId) || !isId(e.model) || !USAGE_OUTCOMES.includes(e.outcome)) return undefined;
  if (!isCount(e.promptTokens) || !isCount(e.completionTokens)) return undefined;
  if (!isTime(e.startedAtMs) || !isTime(e.finishedAtMs)) return undefined;
  const expiresAtMs = e.finishedAtMs + retentionMs;
  if (expiresAtMs <= nowMs) return undefined;
  return {
    keyId: b.keyId,
    requestId: e.requestId,
    holdId: b.holdId === undefined || b.holdId === e.requestId ? undefined : b.holdId,
    model: e.model,
    atMs: Math.min(e.finishedAtMs, nowMs),
    promptTokens: e.promptTokens,
    completionTokens: e.completionTokens,
    costMicros: b.costMicros,
    expiresAtMs,
    record: {
      id: e.requestId,
      keyId: b.keyId,
      model: e.model,
      promptTokens: e.promptTokens,
      completionTokens: e.completionTokens,
      costMicros: b.costMicros,
      createdAtMs: e.startedAtMs,
      ttftMs: b.ttftMs === null ? null : Math.round(b.ttftMs),
      latencyMs: Math.max(0, e.finishedAtMs - e.startedAtMs),
      finishReason: b.finishReason,
      streamed: b.streamed,
      outcome: e.outcome,
      ...(app === undefined ? {} : { app }),
    },
  };
}

/** Parses a stored generation record (JSON); undefined when it is not one. */
export function parseGeneration(text: string): GenerationRecord | undefined {
  try {
    return generationFrom(JSON.parse(text));
  } catch {
    return undefined;
  }
}

/** Longest app referer and title kept (router/api/openrouter-app.ts cuts them shorter). */
const MAX_APP_TEXT = 256;

function isAppText(v: unknown): v is string {
  return typeof v === "string" && v.length > 0 && v.length <= MAX_APP_TEXT && !CONTROL_CHARS.test(v);
}

/**
 * A request's app as settling stores it, from an event or a stored record:
 * undefined when absent, `null` when malformed (the event is refused, not
 * stored half-checked).
 */
export function appFrom(v: unknown): RequestApp | undefined | null {
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null) return null;
  const { referer, title } = v as Record<string, unknown>;
  if (referer !== undefined && !isAppText(referer)) return null;
  if (title !== undefined && !isAppText(title)) return null;
  if (referer === undefined && title === undefined) return undefined;
  return { ...(referer === undefined ? {} : { referer }), ...(title === undefined ? {} : { title }) };
}

/** A generation record from a parsed JSON value; undefined when it is not one. */
export function generationFrom(v: unknown): GenerationRecord | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const r = v as Record<string, unknown>;
  if (!isId(r.id) || !isKeyId(r.keyId) || !isId(r.model) || !isCount(r.promptTokens)) return undefined;
  if (!isCount(r.completionTokens) || !isMicros(r.costMicros) || !isTime(r.createdAtMs)) return undefined;
  if (!isTime(r.latencyMs) || (r.ttftMs !== null && !isTime(r.ttftMs))) return undefined;
  if (r.finishReason !== null && typeof r.finishReason !== "string") return undefined;
  if (typeof r.streamed !== "boolean" || typeof r.outcome !== "string") return undefined;
  const app = appFrom(r.app);
  if (app === null) return undefined;
  return {
    id: r.id,
    keyId: r.keyId,
    model: r.model,
    promptTokens: r.promptTokens,
    completionTokens: r.completionTokens,
    costMicros: r.costMicros,
    createdAtMs: r.createdAtMs,
    ttftMs: r.ttftMs as number | null,
    latencyMs: r.latencyMs,
    finishReason: r.finishReason as string | null,
    streamed: r.streamed,
    outcome: r.outcome,
    ...(app === undefined ? {} : { app }),
  };
}
