/**
 * A backend reached over the OpenAI HTTP API: vLLM, Ollama, llama.cpp
 * server, TGI, LM Studio or a cloud endpoint. Requests are always streamed;
 * the body is read only as fast as the tunnel consumes events, so a request
 * without flow-control credit stops pulling from the backend's socket and
 * TCP pushes back on the backend.
 *
 * Everything the backend sends is untrusted: bad status codes, bodies that
 * are not JSON, streams that break or never end are each turned into a
 * BackendFailure with a code and a message that carries no secrets (the
 * backend URL and its error text go to the log only, via `cause`).
 */
import type { ChatRequest } from "../gen/tensorclaw/v1/chat.js";
import { FinishReason } from "../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../gen/tensorclaw/v1/tunnel.js";
import {
  type Backend,
  type BackendEvent,
  BackendFailure,
  codeForHttpStatus,
  type DiscoveredModel,
} from "./backend.js";
import { eventsFromChunk, eventsFromCompletion } from "./openai-chunk.js";
import { openAIRequestBody } from "./openai-request-body.js";
import { SseParser } from "./sse-parser.js";

/** Settings of an OpenAI-compatible backend. */
export interface OpenAIHttpBackendOptions {
  /** Base URL including the API prefix, e.g. `http://127.0.0.1:8000/v1`. */
  readonly baseUrl: string;
  /** Bearer key, when the backend wants one. */
  readonly apiKey?: string | undefined;
  /** Largest non-streamed body or SSE event accepted, in bytes. Default 8 MiB. */
  readonly maxBodyBytes?: number;
  /** The fetch implementation (default the global one). */
  readonly fetch?: typeof fetch;
}

const {
  REQUEST_ERROR_CODE_BACKEND_ERROR: BACKEND_ERROR,
  REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE: UNAVAILABLE,
} = RequestErrorCode;

/** Reads a whole body, refusing more than `limit` bytes. */
async function readBounded(res: Response, limit: number): Promise<string> {
  const reader = res.body?.getReader();
  if (reader === undefined) return "";
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel().catch(() => {});
      throw new BackendFailure(BACKEND_ERROR, "the backend sent an oversized body");
    }
    parts.push(value);
  }
  return Buffer.concat(parts).toString("utf8");
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
  readonly #base: string;
  readonly #key: string | undefined;
  readonly #maxBodyBytes: number;
  readonly #fetch: typeof fetch;

  constructor(opts: OpenAIHttpBackendOptions) {
    this.#base = opts.baseUrl.replace(/\/+$/, "");
    this.#key = opts.apiKey;
    this.#maxBodyBytes = opts.maxBodyBytes ?? 8 * 1024 * 1024;
    this.#fetch = opts.fetch ?? fetch;
    const u = new URL(this.#base);
    this.description = `openai-compatible ${u.protocol}//${u.host}${u.pathname}`;
  }

  #headers(json: boolean): Record<string, string> {
    const h: Record<string, string> = { accept: json ? "application/json" : "text/event-stream" };
    if (json) h["content-type"] = "application/json";
    if (this.#key !== undefined) h.authorization = `Bearer ${this.#key}`;
    return h;
  }

  /** Sends a request; network failures become BACKEND_UNAVAILABLE unless the caller aborted. */
  async #send(path: string, init: RequestInit, signal: AbortSignal): Promise<Response> {
    try {
      return await this.#fetch(`${this.#base}${path}`, { ...init, signal });
    } catch (cause) {
      if (signal.aborted) throw signal.reason;
      throw new BackendFailure(UNAVAILABLE, "the backend could not be reached", { cause });
    }
  }

  async listModels(signal: AbortSignal): Promise<DiscoveredModel[]> {
    const res = await this.#send("/models", { headers: this.#headers(true) }, signal);
    const text = await readBounded(res, this.#maxBodyBytes);
    if (!res.ok)
      throw new BackendFailure(UNAVAILABLE, `the backend answered /models with HTTP ${res.status}`);
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

  async *chat(model: string, chat: ChatRequest, signal: AbortSignal): AsyncGenerator<BackendEvent> {
    const body = JSON.stringify(openAIRequestBody(model, chat));
    const res = await this.#send(
      "/chat/completions",
      { method: "POST", headers: this.#headers(true), body },
      signal,
    );
    if (!res.ok) {
      const detail = await readBounded(res, 64 * 1024).catch(() => "");
      throw new BackendFailure(codeForHttpStatus(res.status), `the backend answered HTTP ${res.status}`, {
        cause: new Error(detail.slice(0, 2000)),
      });
    }
    const type = res.headers.get("content-type") ?? "";
    if (type.includes("application/json")) {
      // A backend that ignored `stream: true`: one whole completion.
      const text = await this.#guard(signal, () => readBounded(res, this.#maxBodyBytes));
      let doc: unknown;
      try {
        doc = JSON.parse(text);
      } catch (cause) {
        throw new BackendFailure(BACKEND_ERROR, "the backend sent invalid JSON", { cause });
      }
      yield* eventsFromCompletion(doc);
      return;
    }
    yield* this.#stream(res, signal);
  }

  async #guard<T>(signal: AbortSignal, read: () => Promise<T>): Promise<T> {
    try {
      return await read();
    } catch (cause) {
      if (signal.aborted) throw signal.reason;
      if (cause instanceof BackendFailure) throw cause;
      throw new BackendFailure(BACKEND_ERROR, "the backend connection broke mid-stream", { cause });
    }
  }

  async *#stream(res: Response, signal: AbortSignal): AsyncGenerator<BackendEvent> {
    const reader = res.body?.getReader();
    if (reader === undefined) throw new BackendFailure(BACKEND_ERROR, "the backend sent an empty stream");
    const parser = new SseParser(this.#maxBodyBytes);
    let finished = false;
    let done = false;
    try {
      while (!done) {
        const step = await this.#guard(signal, () => reader.read());
        if (step.done) break;
        let events: ReturnType<SseParser["push"]>;
        try {
          events = parser.push(step.value);
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
          for (const out of eventsFromChunk(doc)) {
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
      // Releases the connection: aborts a body still flowing (early return,
      // failure), and is harmless on one that ended.
      await reader.cancel().catch(() => {});
    }
  }
}
