/**
 * A real OpenAI-compatible HTTP server for tests (node:http on 127.0.0.1,
 * port 0). It speaks enough of the OpenAI API to stand in for vLLM, Ollama
 * or a cloud endpoint behind a miner:
 *
 * - `GET /v1/models` — the configured models (with vLLM's `max_model_len`
 *   when `contextLength` is set).
 * - `POST /v1/chat/completions` — streaming (SSE `data:` lines ending with
 *   `data: [DONE]`, plus a final usage chunk when the request asks for
 *   `stream_options.include_usage`) and non-streaming.
 *
 * The answer is deterministic: `backendTokens(promptText, n)` gives the exact
 * pieces, where `promptText` is the concatenated text content of the
 * request's messages (see `promptTextOf`). Each piece is one "token" in
 * this server's own accounting (`RecordedRequest.completionTokens`), which is
 * what an end-to-end test compares ledger totals against. When the request
 * has `tools` (and `tool_choice` is not "none"), the answer is one call to
 * the first tool, its JSON arguments streamed in pieces, finish reason
 * `tool_calls`.
 *
 * Behaviour is set globally (`options` at start, `configure()` later) and
 * may be overridden per request by a directive anywhere in a message's text:
 *
 *     [[backend tokens=20 delay=5 fault=http500 usage=off]]
 *
 * Keys: `tokens` (completion pieces), `delay` (ms between pieces), `fault`
 * (see `BackendFault`), `after` (pieces sent before a mid-stream fault),
 * `usage` (`off` never reports usage, even when asked), `inflate` (reported
 * usage multiplied by this whole number: a backend inflating its counts). `max_tokens` caps
 * the pieces and turns the finish reason into `length`.
 *
 * When the request asks for `logprobs`, text answers carry them in OpenAI's
 * shape (`choices[0].logprobs.content`, per piece when streamed): the
 * deterministic values of `backendLogprobs(promptText, n, top_logprobs)`.
 * The directive key `top` sends that many alternatives whatever was asked (a
 * backend more generous than asked).
 *
 * A text answer with `n` > 1 has n choices, choice i being
 * `backendTokens(choiceText(promptText, i), tokens)`; streamed, their
 * pieces interleave (piece k of every choice, then piece k + 1), as OpenAI
 * does. `systemFingerprint` (or the directive key `fp`) puts
 * `system_fingerprint` on every chunk and on the whole answer.
 *
 * Every request is recorded (`requests`) with its parsed body, headers,
 * produced pieces and how it ended, including `aborted` when the client went
 * away before the response ended — the way a test checks that a cancel
 * reached the backend (`waitForAbort`).
 */
import { EventEmitter, once } from "node:events";
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { answerCompletions } from "./openai-backend-completions.js";
import { embeddingsAnswer } from "./openai-backend-embeddings.js";
import {
  type BackendLogprob,
  backendDirective,
  backendLogprobs,
  backendTokens,
  choiceText,
  countPromptTokens,
  promptTextOf,
} from "./openai-backend-text.js";

export { backendCompletionPieces } from "./openai-backend-completions.js";
export { backendEmbedding, backendEmbeddingTokens } from "./openai-backend-embeddings.js";
export {
  backendLogprobs,
  backendTokens,
  choiceText,
  countPromptTokens,
  promptTextOf,
} from "./openai-backend-text.js";

/** How the backend misbehaves for a chat request. */
export type BackendFault =
  /** Answer normally. */
  | "none"
  /** HTTP 500 with an OpenAI error body. */
  | "http500"
  /** HTTP 429 with an OpenAI error body and `retry-after: 1`. */
  | "http429"
  /** HTTP 400 with an OpenAI error body (the request is "invalid"). */
  | "http400"
  /** Streaming: `after` good chunks, then a `data:` line that is not JSON. Non-streaming: a body that is not JSON. */
  | "invalid-json"
  /** Never answer: no status line, no bytes, until the client goes away. */
  | "hang"
  /** Send `after` pieces, then stop writing but keep the connection open. */
  | "hang-mid-stream"
  /** Send `after` pieces, then destroy the socket. */
  | "close-mid-stream";

const FAULTS: readonly BackendFault[] = [
  "none",
  "http500",
  "http429",
  "http400",
  "invalid-json",
  "hang",
  "hang-mid-stream",
  "close-mid-stream",
];

/** Settings of the test backend; every field has a default. */
export interface OpenAIBackendOptions {
  /** Model ids listed by /v1/models. Default `["test-model"]`. */
  readonly models?: readonly string[];
  /** Context length advertised as `max_model_len`; 0 omits it. Default 0. */
  readonly contextLength?: number;
  /** Completion pieces per answer. Default 8. */
  readonly tokens?: number;
  /** Delay between pieces in ms; 0 writes them back to back. Default 0. */
  readonly tokenDelayMs?: number;
  /** Fault applied to chat requests. Default "none". */
  readonly fault?: BackendFault;
  /** Pieces sent before a mid-stream fault. Default half of `tokens`. */
  readonly faultAfter?: number | undefined;
  /** Report usage (non-streaming always; streaming when asked). Default true. */
  readonly reportUsage?: boolean;
  /** When set, requests must carry `Authorization: Bearer <apiKey>` (else 401). */
  readonly apiKey?: string | undefined;
  /** `system_fingerprint` of every answer; undefined sends none. */
  readonly systemFingerprint?: string | undefined;
  /**
   * Chat requests served at once; the rest wait in arrival order, as a
   * backend with a fixed number of slots does (Ollama's OLLAMA_NUM_PARALLEL,
   * llama.cpp's --parallel). Default unlimited.
   */
  readonly parallel?: number | undefined;
}

/** How a recorded request ended. */
export type RequestOutcome = "completed" | "aborted" | "failed" | "open";

/** One request the backend received. */
export interface RecordedRequest {
  /** Sequence number, from 1. */
  readonly id: number;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  /** Parsed JSON body, or undefined when absent or not JSON. */
  readonly body: unknown;
  /** Completion pieces written so far. */
  completionTokens: number;
  /** Prompt tokens as this backend counts them (see `countPromptTokens`). */
  promptTokens: number;
  /** True when the client went away before the response ended. */
  aborted: boolean;
  outcome: RequestOutcome;
}

interface Plan {
  tokens: number;
  /** `max_tokens` cut the answer short. */
  capped: boolean;
  delayMs: number;
  fault: BackendFault;
  after: number;
  usage: boolean;
  /** Factor the reported usage is multiplied by (a hostile backend inflating its counts). */
  inflate: number;
  /** Alternatives per token when the request asks for logprobs (undefined: no logprobs). */
  top: number | undefined;
  /** Choices of a text answer (`n`). */
  choices: number;
  /** `system_fingerprint` to send, or undefined. */
  fingerprint: string | undefined;
}

/**
 * A running test backend. Create with `startOpenAIBackend`; close it in an
 * `after`/`afterEach` hook.
 */
export class OpenAIBackend {
  /** Every request received, oldest first. */
  readonly requests: RecordedRequest[] = [];
  readonly #server = createServer((req, res) => {
    // A client that vanishes while its body is read is not a test failure.
    this.#handle(req, res).catch(() => res.destroy());
  });
  readonly #events = new EventEmitter();
  #options: Required<Omit<OpenAIBackendOptions, "faultAfter" | "apiKey" | "systemFingerprint" | "parallel">> &
    Pick<OpenAIBackendOptions, "faultAfter" | "apiKey" | "systemFingerprint" | "parallel">;
  #port = 0;
  #seq = 0;
  /** Chat requests being answered (see `parallel`), and those waiting for a slot. */
  #serving = 0;
  readonly #waiting: (() => void)[] = [];
  /** Most chat requests answered at once so far. */
  peakServing = 0;
  // Connections cut by `stop()` are the backend going down, not client aborts.
  #stopping = false;

  constructor(options: OpenAIBackendOptions = {}) {
    this.#options = {
      models: ["test-model"],
      contextLength: 0,
      tokens: 8,
      tokenDelayMs: 0,
      fault: "none",
      reportUsage: true,
      ...options,
    };
    this.#events.setMaxListeners(0);
  }

  /** Base URL ending in `/v1`, as a miner's `--backend` takes it. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}/v1`;
  }

  get port(): number {
    return this.#port;
  }

  /** Changes settings for requests that arrive from now on. */
  configure(options: OpenAIBackendOptions): void {
    this.#options = { ...this.#options, ...options };
  }

  /** Chat requests only (POST /v1/chat/completions). */
  chatRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path === "/v1/chat/completions");
  }

  /** Sum of completion pieces produced over all requests. */
  totalCompletionTokens(): number {
    return this.requests.reduce((s, r) => s + r.completionTokens, 0);
  }

  /** Resolves once `count` chat requests have arrived (immediately if they have). */
  async waitForChatRequests(count: number): Promise<RecordedRequest[]> {
    await this.#until(() => this.chatRequests().length >= count);
    return this.chatRequests();
  }

  /** Resolves once some chat request was aborted by its client (optionally a given one). */
  async waitForAbort(predicate: (r: RecordedRequest) => boolean = () => true): Promise<RecordedRequest> {
    let found: RecordedRequest | undefined;
    await this.#until(() => {
      found = this.requests.find((r) => r.aborted && predicate(r));
      return found !== undefined;
    });
    return found as RecordedRequest;
  }

  /** Resolves once `predicate` holds; re-checked after every backend event. */
  async #until(predicate: () => boolean): Promise<void> {
    while (!predicate()) await once(this.#events, "change");
  }

  /** Listens on 127.0.0.1 (port 0 the first time, the same port after `stop`). */
  async listen(): Promise<void> {
    this.#server.listen(this.#port, "127.0.0.1");
    await once(this.#server, "listening");
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  /**
   * Stops listening and drops every open connection (a backend that went
   * down). `listen()` brings it back on the same port.
   */
  async stop(): Promise<void> {
    if (!this.#server.listening) return;
    this.#stopping = true;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
    this.#stopping = false;
  }

  /** Stops for good. */
  close(): Promise<void> {
    return this.stop();
  }

  #touch(): void {
    this.#events.emit("change");
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    let body: unknown;
    try {
      body = raw === "" ? undefined : JSON.parse(raw);
    } catch {
      body = undefined;
    }
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const rec: RecordedRequest = {
      id: ++this.#seq,
      method: req.method ?? "GET",
      path,
      headers: req.headers,
      body,
      completionTokens: 0,
      promptTokens: countPromptTokens(body),
      aborted: false,
      outcome: "open",
    };
    this.requests.push(rec);
    res.once("close", () => {
      if (!res.writableFinished) {
        if (rec.outcome === "open") {
          rec.aborted = !this.#stopping;
          rec.outcome = this.#stopping ? "failed" : "aborted";
        }
      } else if (rec.outcome === "open") {
        rec.outcome = "completed";
      }
      this.#touch();
    });
    this.#touch();

    const key = this.#options.apiKey;
    if (key !== undefined && req.headers.authorization !== `Bearer ${key}`) {
      return this.#error(res, rec, 401, "invalid_api_key", "Incorrect API key provided.");
    }
    if (req.method === "GET" && path === "/v1/models") return this.#models(res);
    if (req.method === "POST" && path === "/v1/chat/completions") {
      if (typeof body !== "object" || body === null) {
        return this.#error(res, rec, 400, "invalid_request_error", "The body must be a JSON object.");
      }
      return this.#inSlot(res, () => this.#chat(rec, body as Record<string, unknown>, res));
    }
    if (req.method === "POST" && path === "/v1/completions" && typeof body === "object" && body !== null) {
      rec.completionTokens = answerCompletions(body as Record<string, unknown>, res);
      return;
    }
    if (req.method === "POST" && path === "/v1/embeddings" && typeof body === "object" && body !== null) {
      const answer = embeddingsAnswer(body as Record<string, unknown>);
      rec.outcome = answer.status === 200 ? "completed" : "failed";
      res.writeHead(answer.status, { "content-type": "application/json" }).end(JSON.stringify(answer.json));
      return;
    }
    return this.#error(res, rec, 404, "not_found", `No route ${req.method} ${path}.`);
  }

  /** Runs `answer` now, or once one of the `parallel` slots is free; the slot is held until the response closes. */
  #inSlot(res: ServerResponse, answer: () => Promise<void>): void {
    const go = () => {
      // A client that left while waiting needs no slot.
      if (res.closed) {
        this.#waiting.shift()?.();
        return;
      }
      this.#serving++;
      this.peakServing = Math.max(this.peakServing, this.#serving);
      res.once("close", () => {
        this.#serving--;
        this.#waiting.shift()?.();
      });
      answer().catch(() => res.destroy());
    };
    const parallel = this.#options.parallel;
    if (parallel === undefined || this.#serving < parallel) go();
    else this.#waiting.push(go);
  }

  #models(res: ServerResponse): void {
    const o = this.#options;
    const data = o.models.map((id) => ({
      id,
      object: "model",
      created: 1_700_000_000,
      owned_by: "tensorclaw-test",
      ...(o.contextLength > 0 ? { max_model_len: o.contextLength } : {}),
    }));
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ object: "list", data }));
  }

  #error(res: ServerResponse, rec: RecordedRequest, status: number, type: string, message: string): void {
    rec.outcome = "failed";
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (status === 429) headers["retry-after"] = "1";
    res.writeHead(status, headers).end(JSON.stringify({ error: { message, type, param: null, code: null } }));
  }

  #plan(body: Record<string, unknown>): Plan {
    const o = this.#options;
    const d = backendDirective(promptTextOf(body));
    const num = (k: string, dflt: number) => {
      const v = d.get(k);
      return v !== undefined && /^\d+$/.test(v) ? Number(v) : dflt;
    };
    const wanted = num("tokens", o.tokens);
    const maxTokens = body.max_completion_tokens ?? body.max_tokens;
    const capped = typeof maxTokens === "number" && maxTokens >= 0 && maxTokens < wanted;
    const tokens = capped ? (maxTokens as number) : wanted;
    const faultText = d.get("fault");
    const fault = FAULTS.includes(faultText as BackendFault) ? (faultText as BackendFault) : o.fault;
    return {
      tokens,
      capped,
      delayMs: num("delay", o.tokenDelayMs),
      fault,
      after: num("after", o.faultAfter ?? Math.floor(tokens / 2)),
      usage: d.get("usage") === "off" ? false : o.reportUsage,
      inflate: num("inflate", 1),
      top:
        body.logprobs === true
          ? num("top", typeof body.top_logprobs === "number" ? body.top_logprobs : 0)
          : undefined,
      choices: typeof body.n === "number" && body.n > 1 ? body.n : 1,
      fingerprint: d.get("fp") ?? o.systemFingerprint,
    };
  }

  async #chat(rec: RecordedRequest, body: Record<string, unknown>, res: ServerResponse): Promise<void> {
    const plan = this.#plan(body);
    const model = typeof body.model === "string" ? body.model : "unknown";
    switch (plan.fault) {
      case "http500":
        return this.#error(res, rec, 500, "server_error", "The backend had an internal error.");
      case "http429":
        return this.#error(res, rec, 429, "rate_limit_error", "Too many requests.");
      case "http400":
        return this.#error(res, rec, 400, "invalid_request_error", "The backend refused the request.");
      case "hang":
        return;
      default:
        break;
    }
    const tools = Array.isArray(body.tools) && body.tool_choice !== "none" ? body.tools : [];
    const toolName = (tools[0] as { function?: { name?: unknown } } | undefined)?.function?.name;
    // Several choices for text answers; a tool call is always one.
    const n = typeof toolName === "string" ? 1 : plan.choices;
    const texts = Array.from({ length: n }, (_, c) => choiceText(promptTextOf(body), c));
    const answers = texts.map((t) => backendTokens(t, plan.tokens));
    const pieces = answers[0] as string[];
    // Logprobs describe text answers only (OpenAI sends none for tool calls).
    const choiceLogprobs: (BackendLogprob[] | undefined)[] = texts.map((t) =>
      plan.top === undefined || typeof toolName === "string"
        ? undefined
        : backendLogprobs(t, plan.tokens, plan.top),
    );
    const fp = plan.fingerprint === undefined ? {} : { system_fingerprint: plan.fingerprint };
    const finish = typeof toolName === "string" ? "tool_calls" : plan.capped ? "length" : "stop";
    const id = `chatcmpl-test-${rec.id}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = () => ({
      prompt_tokens: rec.promptTokens * plan.inflate,
      completion_tokens: rec.completionTokens * plan.inflate,
      total_tokens: (rec.promptTokens + rec.completionTokens) * plan.inflate,
    });

    if (body.stream !== true) {
      if (plan.fault === "invalid-json") {
        rec.outcome = "failed";
        res.writeHead(200, { "content-type": "application/json" }).end('{"id": "broken", "choices": [');
        return;
      }
      rec.completionTokens = pieces.length * n;
      const message =
        typeof toolName === "string"
          ? {
              role: "assistant",
              content: null,
              tool_calls: [
                {
                  id: `call_${rec.id}`,
                  type: "function",
                  function: { name: toolName, arguments: JSON.stringify({ text: pieces.join("") }) },
                },
              ],
            }
          : { role: "assistant", content: pieces.join("") };
      const out = {
        id,
        object: "chat.completion",
        created,
        model,
        ...fp,
        choices: answers.map((a, c) => {
          const lp = choiceLogprobs[c];
          return {
            index: c,
            message: c === 0 ? message : { role: "assistant", content: a.join("") },
            finish_reason: finish,
            logprobs: lp === undefined ? null : { content: lp, refusal: null },
          };
        }),
        ...(plan.usage ? { usage: usage() } : {}),
      };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(out));
      return;
    }

    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const send = async (obj: unknown): Promise<boolean> => {
      if (res.destroyed) return false;
      if (!res.write(`data: ${JSON.stringify(obj)}\n\n`)) {
        // Honour TCP back-pressure so a client that stops reading stalls us.
        await Promise.race([once(res, "drain"), once(res, "close")]);
      }
      return !res.destroyed;
    };
    const chunk = (
      delta: unknown,
      finishReason: string | null,
      lp: BackendLogprob | undefined = undefined,
      index = 0,
    ) => ({
      id,
      object: "chat.completion.chunk",
      created,
      model,
      ...fp,
      choices: [
        {
          index,
          delta,
          finish_reason: finishReason,
          logprobs: lp === undefined ? null : { content: [lp], refusal: null },
        },
      ],
    });
    /** The scenario's pacing (`delay=`, `tokenDelayMs`): a backend that is slow on purpose. */
    const pace = (ms: number) => new Promise((r) => setTimeout(r, ms));

    for (let c = 0; c < n; c++) {
      if (!(await send(chunk({ role: "assistant", content: "" }, null, undefined, c)))) return;
    }
    if (typeof toolName === "string") {
      const first = {
        index: 0,
        id: `call_${rec.id}`,
        type: "function",
        function: { name: toolName, arguments: "" },
      };
      if (!(await send(chunk({ tool_calls: [first] }, null)))) return;
    }
    for (let i = 0; i < pieces.length; i++) {
      if (i === plan.after && plan.fault !== "none") {
        if (plan.fault === "invalid-json") {
          rec.outcome = "failed";
          res.end("data: {this is not json\n\n");
          return;
        }
        if (plan.fault === "close-mid-stream") {
          rec.outcome = "failed";
          res.destroy();
          this.#touch();
          return;
        }
        if (plan.fault === "hang-mid-stream") return;
      }
      if (plan.delayMs > 0) await pace(plan.delayMs);
      else if (i % 32 === 31) await new Promise((r) => setImmediate(r));
      if (res.destroyed) return;
      for (let c = 0; c < n; c++) {
        const text = answers[c]?.[i] as string;
        const delta =
          typeof toolName === "string"
            ? { tool_calls: [{ index: 0, function: { arguments: i === 0 ? `{"text":"${text}` : text } }] }
            : { content: text };
        rec.completionTokens++;
        if (!(await send(chunk(delta, null, choiceLogprobs[c]?.[i], c)))) return;
      }
    }
    if (
      typeof toolName === "string" &&
      !(await send(
        chunk(
          { tool_calls: [{ index: 0, function: { arguments: pieces.length === 0 ? '{"text":""}' : '"}' } }] },
          null,
        ),
      ))
    ) {
      return;
    }
    for (let c = 0; c < n; c++) {
      if (!(await send(chunk({}, finish, undefined, c)))) return;
    }
    const opts = body.stream_options as { include_usage?: unknown } | undefined;
    if (plan.usage && opts?.include_usage === true) {
      if (
        !(await send({
          id,
          object: "chat.completion.chunk",
          created,
          model,
          ...fp,
          choices: [],
          usage: usage(),
        }))
      ) {
        return;
      }
    }
    res.end("data: [DONE]\n\n");
  }
}

/** Starts a test backend on a free port. */
export async function startOpenAIBackend(options: OpenAIBackendOptions = {}): Promise<OpenAIBackend> {
  const backend = new OpenAIBackend(options);
  await backend.listen();
  return backend;
}
