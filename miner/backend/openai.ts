/**
 * A backend reached over the OpenAI HTTP API: vLLM, Ollama, llama.cpp
 * server, TGI, LM Studio or a cloud endpoint. Calls go through one undici
 * keep-alive pool per backend (see http-exchange.ts: callbacks from the
 * HTTP parser instead of streams, about half the CPU of node:http's client
 * per request). A streamed body is read only as fast as the tunnel consumes
 * events, so a request without flow-control credit stops pulling from the
 * backend's socket and TCP pushes back on the backend. A request whose user
 * did not ask for a stream is sent as a plain completion: one body to parse
 * instead of one event per token.
 *
 * Everything the backend sends is untrusted: bad status codes, bodies that
 * are not JSON, streams that break or never end are each turned into a
 * BackendFailure with a code and a message that carries no secrets. An HTTP
 * error's own message goes out scrubbed (backend-error-body.ts), with its
 * status; the raw body goes to the log only, via `cause`.
 */
import { Pool } from "undici";
import { TRACE_ID } from "../../common/trace-id.js";
import type { ChatRequest, CompletionRequest, EmbeddingRequest } from "../../gen/tensorclaw/v1/chat.js";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import {
  type Backend,
  type BackendEvent,
  BackendFailure,
  codeForHttpStatus,
  type DiscoveredModel,
  type EmbeddingResult,
  type RequestContext,
} from "./backend.js";
import { backendErrorMessage, ERROR_BODY_MAX_BYTES } from "./backend-error-body.js";
import { HttpExchange } from "./http-exchange.js";
import { eventsFromChunk, eventsFromCompletion } from "./openai-chunk.js";
import { completionRequestBody, eventsFromTextCompletion } from "./openai-completions.js";
import { embeddingRequestBody, embeddingsFromResponse } from "./openai-embeddings.js";
import { logprobsWant } from "./openai-logprobs.js";
import { openAIRequestBody } from "./openai-request-body.js";
import type { StopSignal } from "./request-stop.js";
import { DEFAULT_MAX_EVENT_BYTES, SseParser } from "./sse-parser.js";

/** Settings of an OpenAI-compatible backend. */
export interface OpenAIHttpBackendOptions {
  /** Base URL including the API prefix, e.g. `http://127.0.0.1:8000/v1`. */
  readonly baseUrl: string;
  /** Bearer key, when the backend wants one. */
  readonly apiKey?: string | undefined;
  /** Largest non-streamed body or SSE event accepted, in bytes. Default 8 MiB ({@link DEFAULT_MAX_BODY_BYTES}). */
  readonly maxBodyBytes?: number;
}

const {
  REQUEST_ERROR_CODE_BACKEND_ERROR: BACKEND_ERROR,
  REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE: UNAVAILABLE,
} = RequestErrorCode;

/** Largest non-streamed body or SSE event accepted unless told otherwise. */
export const DEFAULT_MAX_BODY_BYTES = DEFAULT_MAX_EVENT_BYTES;
/** Characters of an error answer kept for the log. */
const ERROR_DETAIL_CHARS = 2000;

/**
 * Bytes of a float-format embeddings answer allowed per input, beyond the
 * usual body limit: 16,384 values (the router's ceiling) of about 24 JSON
 * characters each. A batch of long vectors is legitimately large.
 */
const EMBEDDING_JSON_BYTES_PER_INPUT = 16_384 * 24;

/** How long a finished stream's leftover bytes may take to drain before the connection is dropped. */
const DRAIN_MS = 5_000;

/** Reads a whole body, refusing more than `limit` bytes. */
async function readBounded(x: HttpExchange, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for (let b = await x.read(); b !== undefined; b = await x.read()) {
    size += b.byteLength;
    if (size > limit) {
      x.release(false, 0);
      throw new BackendFailure(BACKEND_ERROR, "the backend sent an oversized body");
    }
    parts.push(b);
  }
  return parts.length === 1 ? (parts[0] as Buffer).toString("utf8") : Buffer.concat(parts).toString("utf8");
}

/**
 * The first `limit` bytes of a body (an error answer: its start says why);
 * a longer body is cut there and its connection dropped rather than read on.
 */
async function readPrefix(x: HttpExchange, limit: number): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for (let b = await x.read(); b !== undefined; b = await x.read()) {
    parts.push(b);
    size += b.byteLength;
    if (size >= limit) {
      x.release(false, 0);
      break;
    }
  }
  // A multi-byte character cut at the limit decodes as U+FFFD, which the scrubber keeps as it is.
  return Buffer.concat(parts).subarray(0, limit).toString("utf8");
}

function contextLengthOf(m: Record<string, unknown>): number {
  for (const key of ["max_model_len", "context_length", "context_window"]) {
    const v = m[key];
    if (typeof v === "number" && Number.isSafeInteger(v) && v > 0) return Math.min(v, 0xffffffff);
  }
  return 0;
}

/** An OpenAI-compatible HTTP backend. */
export class OpenAIHttpBackend implements Backend {
  readonly description: string;
  readonly #prefix: string;
  readonly #key: string | undefined;
  readonly #maxBodyBytes: number;
  readonly #pool: Pool;

  constructor(opts: OpenAIHttpBackendOptions) {
    const u = new URL(opts.baseUrl.replace(/\/+$/, ""));
    if (u.protocol !== "http:" && u.protocol !== "https:")
      throw new TypeError(`backend URL must be http(s), not ${u.protocol}`);
    this.#prefix = u.pathname === "/" ? "" : u.pathname;
    this.#key = opts.apiKey;
    this.#maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
    // No undici timeouts: a request's deadline is the router's, enforced by
    // the request runner, and a stream out of credit may rightly sit idle.
    this.#pool = new Pool(u.origin, { headersTimeout: 0, bodyTimeout: 0 });
    this.description = `openai-compatible ${u.protocol}//${u.host}${u.pathname}`;
  }

  /** Closes the pooled connections. */
  close(): void {
    this.#pool.destroy().catch(() => {});
  }

  /**
   * Sends a request and resolves with the response head; network failures
   * become BACKEND_UNAVAILABLE unless the caller aborted.
   */
  async #send(path: string, body: string | undefined, json: boolean, signal: StopSignal, traceId = "") {
    const headers: Record<string, string> = { accept: json ? "application/json" : "text/event-stream" };
    if (body !== undefined) headers["content-type"] = "application/json";
    // The router's id, so the backend's log joins the miner's and the router's (only a well-formed one).
    if (TRACE_ID.test(traceId)) headers["x-request-id"] = traceId;
    if (this.#key !== undefined) headers.authorization = `Bearer ${this.#key}`;
    try {
      return await HttpExchange.start(
        this.#pool,
        { method: body === undefined ? "GET" : "POST", path: `${this.#prefix}${path}`, headers, body },
        signal,
      );
    } catch (cause) {
      if (signal.aborted) throw signal.reason;
      throw new BackendFailure(UNAVAILABLE, "the backend could not be reached", { cause });
    }
  }

  async listModels(signal: AbortSignal): Promise<DiscoveredModel[]> {
    const res = await this.#send("/models", undefined, true, signal);
    const text = await this.#guard(signal, () => readBounded(res, this.#maxBodyBytes));
    const status = res.status;
    if (status < 200 || status > 299)
      throw new BackendFailure(UNAVAILABLE, `the backend answered /models with HTTP ${status}`);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (cause) {
      throw new BackendFailure(BACKEND_ERROR, "the backend's /models is not JSON", { cause });
    }
    const data = (doc as { data?: unknown })?.data;
    if (!Array.isArray(data))
      throw new BackendFailure(BACKEND_ERROR, "the backend's /models has no data list");
    const out: DiscoveredModel[] = [];
    for (const m of data) {
      if (typeof m !== "object" || m === null) continue;
      const id = (m as { id?: unknown }).id;
      if (typeof id !== "string" || id === "" || id.length > 256) continue;
      out.push({ id, contextLength: contextLengthOf(m as Record<string, unknown>) });
    }
    return out;
  }

  chat(
    model: string,
    chat: ChatRequest,
    signal: StopSignal,
    ctx?: RequestContext,
  ): AsyncGenerator<BackendEvent> {
    return this.#answer(signal, () => {
      const request = openAIRequestBody(model, chat);
      const want = logprobsWant(request);
      const choices = chat.n ?? 1;
      return {
        path: "/chat/completions",
        body: JSON.stringify(request),
        stream: chat.stream,
        traceId: ctx?.traceId,
        parse: (doc) => eventsFromChunk(doc, want, choices),
        parseWhole: (doc) => eventsFromCompletion(doc, want, choices),
      };
    });
  }

  complete(
    model: string,
    req: CompletionRequest,
    signal: StopSignal,
    ctx?: RequestContext,
  ): AsyncGenerator<BackendEvent> {
    return this.#answer(signal, () => {
      const parse = (doc: unknown) => eventsFromTextCompletion(doc, req.logprobs);
      return {
        path: "/completions",
        body: JSON.stringify(completionRequestBody(model, req)),
        stream: req.stream,
        traceId: ctx?.traceId,
        parse,
        parseWhole: parse,
      };
    });
  }

  async embed(
    model: string,
    req: EmbeddingRequest,
    signal: StopSignal,
    ctx?: RequestContext,
  ): Promise<EmbeddingResult> {
    const body = JSON.stringify(embeddingRequestBody(model, req));
    const res = await this.#send("/embeddings", body, true, signal, ctx?.traceId);
    if (res.status < 200 || res.status > 299) throw await this.#httpFailure(res, signal);
    const limit = Math.max(this.#maxBodyBytes, req.input.length * EMBEDDING_JSON_BYTES_PER_INPUT);
    const text = await this.#guard(signal, () => readBounded(res, limit));
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (cause) {
      throw new BackendFailure(BACKEND_ERROR, "the backend sent invalid JSON", { cause });
    }
    return embeddingsFromResponse(doc, req.input.length);
  }

  /**
   * The failure for an HTTP error answer: the backend's own message (its
   * body read up to 16 KiB, scrubbed, 1,000 characters) with its status, so
   * the router can tell the user why (a context-length error is a 400 the
   * user can fix). A 401 or 403 is about the miner's own credentials: the
   * user is told only that the miner failed.
   */
  async #httpFailure(res: HttpExchange, signal: StopSignal): Promise<BackendFailure> {
    const status = res.status;
    let body = "";
    try {
      body = await readPrefix(res, ERROR_BODY_MAX_BYTES);
    } catch {
      // Cut mid-body: the status alone is said.
      if (signal.aborted) throw signal.reason;
    }
    const own = status === 401 || status === 403;
    const message = own
      ? `the backend refused the miner's credentials (HTTP ${status})`
      : backendErrorMessage(status, body);
    return new BackendFailure(codeForHttpStatus(status), message, {
      httpStatus: status,
      cause: new Error(`HTTP ${status}: ${body.slice(0, ERROR_DETAIL_CHARS)}`),
    });
  }

  async #guard<T>(signal: StopSignal, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (cause) {
      throw readFailure(signal, cause);
    }
  }

  /**
   * One text answer (chat or completion), as events: sends the request
   * `prepare` describes (called on the first `next()`, so a request that
   * cannot be built fails there, like a backend failure), then parses a
   * whole completion or reads the event stream. One generator from request
   * to last event: each event crosses one generator, not two (`yield*`
   * costs microtasks per event).
   */
  async *#answer(signal: StopSignal, prepare: () => AnswerRequest): AsyncGenerator<BackendEvent> {
    const p = prepare();
    const res = await this.#send(p.path, p.body, !p.stream, signal, p.traceId);
    if (res.status < 200 || res.status > 299) throw await this.#httpFailure(res, signal);
    if (!headerText(res.headers["content-type"]).includes("text/event-stream")) {
      // A whole completion: asked for, or sent by a backend that ignored `stream: true`.
      const text = await this.#guard(signal, () => readBounded(res, this.#maxBodyBytes));
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (cause) {
        throw new BackendFailure(BACKEND_ERROR, "the backend sent invalid JSON", { cause });
      }
      yield* p.parseWhole(doc);
      return;
    }
    const parse = p.parse;
    const parser = new SseParser(this.#maxBodyBytes);
    let finished = false;
    let done = false;
    try {
      while (!done) {
        // Read inline, not through #guard: no closure and no extra promise per piece.
        let piece: Buffer | undefined;
        try {
          piece = await res.read();
        } catch (cause) {
          throw readFailure(signal, cause);
        }
        if (piece === undefined) break;
        let events: ReturnType<SseParser["push"]>;
        try {
          events = parser.push(piece);
        } catch (cause) {
          throw new BackendFailure(BACKEND_ERROR, "the backend sent an oversized event", { cause });
        }
        for (const ev of events) {
          if (ev.data === "[DONE]") {
            done = true;
            break;
          }
          if (ev.event === "error")
            throw new BackendFailure(BACKEND_ERROR, "the backend reported an error mid-stream");
          let doc: unknown;
          try {
            doc = JSON.parse(ev.data);
          } catch (cause) {
            throw new BackendFailure(BACKEND_ERROR, "the backend sent invalid JSON in its stream", { cause });
          }
          for (const out of parse(doc)) {
            if (out.type === "delta" && out.finishReason !== FinishReason.FINISH_REASON_UNSPECIFIED)
              finished = true;
            yield out;
          }
        }
      }
      // Servers that skip `[DONE]` are fine once they sent a finish reason;
      // without one the answer was cut short.
      if (!done && !finished) throw new BackendFailure(BACKEND_ERROR, "the backend stream ended early");
    } finally {
      // A stream read to `[DONE]` keeps its connection; one left early
      // (failure, abort, the consumer stopped) drops it.
      res.release(done && !signal.aborted, DRAIN_MS);
    }
  }
}

/** What a failed read of a body throws: the stop's reason, a BackendFailure as it is, else a broken connection. */
function readFailure(signal: StopSignal, cause: unknown): unknown {
  if (signal.aborted) return signal.reason;
  if (cause instanceof BackendFailure) return cause;
  return new BackendFailure(BACKEND_ERROR, "the backend connection broke mid-stream", { cause });
}

/** What a text answer sends and how it reads the answer (see `#answer`). */
interface AnswerRequest {
  readonly path: string;
  readonly body: string;
  /** The user asked for a stream (the backend may still send a whole completion). */
  readonly stream: boolean;
  readonly traceId: string | undefined;
  /** Events of one streamed chunk. */
  readonly parse: (doc: unknown) => BackendEvent[];
  /** Events of a whole completion. */
  readonly parseWhole: (doc: unknown) => BackendEvent[];
}

/** A header's value as one string (undici gives repeated headers as an array). */
function headerText(v: string | string[] | undefined): string {
  return Array.isArray(v) ? v.join(", ") : (v ?? "");
}
