import type { IncomingMessage, ServerResponse } from "node:http";
import { TensorClawError, toHttpError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { ModelCatalogue } from "../catalogue/catalogue.js";
import type { CatalogueEntry } from "../catalogue/entry.js";
import type { ApiMetrics } from "../metrics.js";
import type { TunnelDispatcher } from "../tunnel/types.js";
import type { AccessRecord } from "./access-log.js";
import type { AttemptState } from "./attempt-loop.js";
import type { KeyBilling, RequestBilling } from "./chat-billing.js";
import type { HandOff } from "./chat-usage.js";
import { parseJson, readBody } from "./http.js";
import type { ApiKeyRecord } from "./keys.js";
import { applyReservation } from "./rate-limit-headers.js";
import type { RateLimiter, Reservation } from "./rate-limiter.js";

/*
 * The bookkeeping every inference endpoint (chat, completions, embeddings)
 * does around its attempts, in one place so the three cannot drift apart:
 * the request metrics, the client watch, the in-flight gauges and, at the
 * end, the access log fields, the rate-limit reconciliation and the
 * billing hold's release.
 */

/** What the frame needs from the router (a subset of ChatDeps). */
export interface FrameDeps {
  readonly limiter: RateLimiter;
  readonly metrics: ApiMetrics;
  readonly clock: () => number;
  readonly logger: Logger;
}

/** One HTTP request to an inference endpoint, as it reaches the endpoint's `serve`. */
export interface Incoming {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly requestId: string;
  /** The caller, once authenticated (no key with --no-auth). */
  readonly caller: { readonly key: ApiKeyRecord | undefined };
  /** The access log line's fields, filled in as the request is served. */
  readonly access: AccessRecord;
}

/**
 * Runs `serve` and counts the request (`requests`, `duration`) under the
 * status it ended with, whatever happened. The model label stays
 * "unknown" until `serve` sets it to a model known to exist, so made-up
 * model names cannot blow up the metrics' cardinality.
 */
export async function countedRequest(
  d: Pick<FrameDeps, "metrics" | "clock">,
  serve: (label: { model: string }) => Promise<number>,
): Promise<number> {
  const label = { model: "unknown" };
  const receivedAtMs = d.clock();
  let status = 500;
  try {
    status = await serve(label);
  } catch (err) {
    status = toHttpError(err).status;
    throw err;
  } finally {
    d.metrics.requests.inc({ model: label.model, status: String(status) });
    d.metrics.duration.observe(
      { model: label.model, status: String(status) },
      (d.clock() - receivedAtMs) / 1000,
    );
  }
  return status;
}

/**
 * Gives a reservation back the tokens it did not use (and, with
 * `refundRequest`, the request itself). In the background: a limiter
 * failure is logged, never the request's.
 */
export function reconcileReservation(
  d: FrameDeps,
  reservation: Reservation,
  used: number,
  requestId: string,
  refundRequest = false,
): void {
  d.limiter
    .reconcile(reservation, used, d.clock(), refundRequest)
    .catch((err: unknown) => d.logger.warn({ err, requestId }, "rate-limit reconcile failed"));
}

/**
 * Admits a key's request: reserves its estimated tokens with the rate
 * limiter (OpenAI's `x-ratelimit-*` headers go onto `res`, whatever answer
 * follows) and, when `hold` is given, bills it (a metered key's hold). A
 * refused hold (402) or a store that cannot bill now (503) gives the
 * reservation back whole.
 */
export async function admitKey<H>(
  d: FrameDeps,
  res: ServerResponse,
  key: ApiKeyRecord,
  estimateTokens: number,
  requestId: string,
  nowMs: number,
  hold: (() => Promise<H>) | undefined,
): Promise<{ readonly reservation: Reservation; readonly held: H | undefined }> {
  const r = await d.limiter.reserve(key.id, key.limits, estimateTokens, nowMs);
  applyReservation(res, key.limits, r);
  if (hold === undefined) return { reservation: r.reservation, held: undefined };
  try {
    return { reservation: r.reservation, held: await hold() };
  } catch (err) {
    reconcileReservation(d, r.reservation, 0, requestId);
    throw err;
  }
}

/**
 * The request is being served: counted in flight (overall and for its
 * model), and a client that goes away cancels the miner's work (or its
 * wait in the capacity queue) at once.
 * Returns the undo, for the request's `finally`.
 */
export function openRequest(
  d: Pick<FrameDeps, "metrics">,
  res: ServerResponse,
  st: Pick<AttemptState, "clientGone" | "call" | "leaveQueue">,
  model: string,
): () => void {
  const onClose = () => {
    if (!res.writableFinished) {
      st.clientGone = true;
      st.call?.cancel("client disconnected");
      // Queued for a slot: it leaves the queue now, not when its wait would have ended.
      st.leaveQueue?.();
    }
  };
  res.once("close", onClose);
  // It may have left while the body was read or the limiter answered.
  if (res.destroyed) st.clientGone = true;
  const modelLabel = { model };
  d.metrics.inFlight.inc();
  d.metrics.modelInFlight.inc(modelLabel);
  return () => {
    d.metrics.inFlight.dec();
    d.metrics.modelInFlight.dec(modelLabel);
    res.off("close", onClose);
  };
}

/** How a request ended, as its closing bookkeeping reads it. */
export interface RequestEnd {
  readonly requestId: string;
  /** The model that served it (or was tried last). */
  readonly model: string;
  readonly st: Pick<AttemptState, "session" | "firstTokenAtMs" | "startedAtMs">;
  /** What the usage hand-off credited and charged. */
  readonly handed: HandOff;
  readonly reservation: Reservation | undefined;
  readonly billing: RequestBilling | undefined;
  /** No miner could take the request (503 no_capacity): the key's request is given back. */
  readonly refusedForCapacity: boolean;
}

/**
 * Closes a request's books once its usage was handed off: the access log's
 * fields, the key's rate-limit reservation (settled at the credited
 * tokens), and its billing hold (the lease keeps what the request costs;
 * the rest returns, all of it when no usage event will charge it).
 */
export function closeRequest(
  d: FrameDeps,
  keyBilling: KeyBilling | undefined,
  end: RequestEnd,
  access: AccessRecord,
): void {
  const { credited, chargedMicros } = end.handed;
  const st = end.st;
  access.model = end.model;
  if (st.session !== undefined) access.miner = st.session.hotkey;
  access.promptTokens = credited.promptTokens;
  access.completionTokens = credited.completionTokens;
  access.ttftMs = st.firstTokenAtMs === undefined ? null : st.firstTokenAtMs - st.startedAtMs;
  if (end.reservation !== undefined) {
    const used = credited.promptTokens + credited.completionTokens;
    reconcileReservation(d, end.reservation, used, end.requestId, end.refusedForCapacity);
  }
  if (end.billing?.ticket !== undefined) keyBilling?.finish(end.billing.ticket, chargedMicros);
}

/** Whether a failed request was refused for want of capacity: no miner ever took it on. */
export function refusedForCapacity(code: string, st: Pick<AttemptState, "call">): boolean {
  return code === "no_capacity" && st.call === undefined;
}

/**
 * The catalogue entry of a completions or embeddings request's model: a
 * catalogue model exists even while no miner serves it (503, not 404); any
 * other id only while miners offer it. 404 otherwise.
 */
export function existingModel(
  d: { readonly catalogue: () => ModelCatalogue; readonly dispatcher: TunnelDispatcher },
  id: string,
): CatalogueEntry {
  const catalogue = d.catalogue();
  const entry = catalogue.resolve(id);
  if (
    entry !== undefined &&
    (catalogue.lists(entry.id) || d.dispatcher.sessionsOffering(entry.id).length > 0)
  ) {
    return entry;
  }
  throw new TensorClawError("model_not_found", `The model ${JSON.stringify(id)} does not exist.`, {
    param: "model",
  });
}

/**
 * Reads a completions or embeddings request: its body, parsed by `parse`,
 * and its model's catalogue entry (404 for a model that does not exist).
 * The request is named by the entry's id from here on, `label` included.
 */
export async function readOneModelRequest<P extends { readonly model: string }>(
  d: Parameters<typeof existingModel>[0] & {
    readonly options: { readonly maxBodyBytes: number; readonly userSalt: string };
  },
  inc: Incoming,
  label: { model: string },
  parse: (raw: unknown, opts: { readonly userSalt: string; readonly account: string }) => P,
): Promise<{ readonly parsed: P; readonly entry: CatalogueEntry }> {
  const raw = parseJson(await readBody(inc.req, d.options.maxBodyBytes));
  const asked = parse(raw, { userSalt: d.options.userSalt, account: inc.caller.key?.id ?? "anonymous" });
  const entry = existingModel(d, asked.model);
  label.model = entry.id;
  return { parsed: { ...asked, model: entry.id }, entry };
}
