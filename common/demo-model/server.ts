/**
 * An OpenAI-compatible HTTP server of the demo model (node:http). It is the
 * validators' *reference* server for `tensorclaw-demo` — the stand-in for
 * vLLM serving the same open weights a miner claims to serve — and a miner
 * may also point `--backend` at it. Endpoints:
 *
 * - `GET /v1/models`, `GET /health`;
 * - `POST /v1/chat/completions`: whole or streamed, `logprobs` /
 *   `top_logprobs`, `stream_options.include_usage`, `max_tokens` /
 *   `max_completion_tokens`, `temperature`, `seed`;
 * - `POST /v1/completions`: a text or token-id prompt, `echo`, legacy
 *   `logprobs` (k), `max_tokens` (0 with `echo` scores the prompt only);
 * - `POST /tokenize` (also `/v1/tokenize`): vLLM's shape, a `prompt` or
 *   `messages` (rendered with the demo chat template) →
 *   `{tokens, count, max_model_len}`;
 * - `POST /v1/embeddings` of the demo embedding model
 *   (`tensorclaw-demo-embed`, embedding.ts), floats only: the validators'
 *   reference for that model (`/v1/models` lists the chat model alone).
 *
 * The judge's path, exactly as with vLLM: tokenize the conversation with
 * `add_generation_prompt`, tokenize the miner's answer with
 * `add_special_tokens: false`, then `/v1/completions` with the concatenated
 * ids, `echo: true`, `logprobs: k`, `max_tokens: 0`; the last entries of
 * `token_logprobs` / `top_logprobs` are the answer's.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { TensorClawError } from "../errors.js";
import { renderChatPrompt } from "./chat-template.js";
import { DEMO_EMBEDDING_MODEL_ID, demoEmbedding } from "./embedding.js";
import {
  DEMO_COMPLETION_MIN_TOKENS,
  DEMO_CONTEXT_LENGTH,
  DEMO_MODEL_ID,
  type DemoModel,
  loadDemoModel,
} from "./model.js";
import {
  chatChunk,
  chatCompletion,
  type LegacyToken,
  legacyLogprobs,
  type ResponseMeta,
  textCompletion,
  usage,
  usageChunk,
} from "./server-format.js";
import {
  DEFAULT_MAX_BODY_BYTES,
  readJson,
  sendError,
  sendEvent,
  sendJson,
  startEvents,
} from "./server-http.js";
import {
  parseChatBody,
  parseCompletionBody,
  parseEmbeddingsBody,
  parseTokenizeBody,
  type Sampling,
} from "./server-request.js";

/** Tokens a chat answer may have when the request sets no `max_tokens`. */
export const DEFAULT_CHAT_MAX_TOKENS = 512;
/** A stream with no token delay yields to the event loop after this many tokens. */
const YIELD_EVERY_TOKENS = 32;

/** Settings of {@link startDemoModelServer}. */
export interface DemoModelServerOptions {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  /** Delay between streamed tokens in ms. Default 0. */
  readonly tokenDelayMs?: number;
  /** Largest request body. Default {@link DEFAULT_MAX_BODY_BYTES}. */
  readonly maxBodyBytes?: number;
  /** Wall clock for `created` (ms). Default `Date.now`. */
  readonly now?: () => number;
  /** The model. Default: the built-in one. */
  readonly model?: DemoModel;
  /** Told about errors that are not the caller's (the caller only sees a generic 500). */
  readonly onInternalError?: (err: unknown) => void;
}

/** A running server. */
export interface DemoModelServer {
  /** Base URL, `http://host:port` (the OpenAI base URL is this plus `/v1`). */
  readonly url: string;
  /** Stops accepting and closes every connection. */
  close(): Promise<void>;
}

/** The answer budget: `max_tokens` when it fits the context (vLLM's 400 otherwise), else what is left. */
function budget(promptTokens: number, s: Sampling, fallback: number): number {
  const room = DEMO_CONTEXT_LENGTH - promptTokens;
  if (s.maxTokens === undefined) {
    if (room < 1) throw contextError(promptTokens, 1);
    return Math.min(fallback, room);
  }
  if (s.maxTokens > room) throw contextError(promptTokens, s.maxTokens);
  return s.maxTokens;
}

function contextError(promptTokens: number, maxTokens: number): TensorClawError {
  return new TensorClawError(
    "invalid_request",
    `This model's maximum context length is ${DEMO_CONTEXT_LENGTH} tokens. However, you requested ` +
      `${promptTokens + maxTokens} tokens (${promptTokens} in the prompt, ${maxTokens} for the completion).`,
    { param: "max_tokens" },
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Starts the server; resolves once it listens (the model is built first). */
export async function startDemoModelServer(opts: DemoModelServerOptions): Promise<DemoModelServer> {
  const model = opts.model ?? (await loadDemoModel());
  const delayMs = opts.tokenDelayMs ?? 0;
  const limit = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const now = opts.now ?? Date.now;
  let served = 0;
  const meta = (prefix: string): ResponseMeta => ({
    id: `${prefix}-demo-${++served}`,
    created: Math.floor(now() / 1000),
    model: DEMO_MODEL_ID,
  });

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseChatBody(await readJson(req, limit));
    const promptTokens = model.encode(renderChatPrompt(body.messages));
    const gen = {
      promptTokens,
      maxTokens: budget(promptTokens.length, body, DEFAULT_CHAT_MAX_TOKENS),
      temperature: body.temperature,
      ...(body.seed === undefined ? {} : { seed: body.seed }),
      topLogprobs: body.topLogprobs,
    };
    const m = meta("chatcmpl");
    if (!body.stream) {
      const out = model.generate(gen);
      sendJson(res, 200, chatCompletion(m, out.tokens, body.logprobs, out.finishReason, promptTokens.length));
      return;
    }
    let gone = false;
    res.on("close", () => {
      gone = true;
    });
    startEvents(res);
    sendEvent(res, chatChunk(m, { role: "assistant", content: "" }, undefined, false, null));
    const tokens = model.stream(gen);
    let n = 0;
    let r = tokens.next();
    for (; r.done !== true; r = tokens.next()) {
      if (delayMs > 0) await sleep(delayMs);
      // Without a delay, still let other requests and the client's disconnect in now and then.
      else if (n % YIELD_EVERY_TOKENS === YIELD_EVERY_TOKENS - 1)
        await new Promise((resolve) => setImmediate(resolve));
      if (gone) return;
      sendEvent(res, chatChunk(m, { content: r.value.text }, r.value, body.logprobs, null));
      n++;
    }
    sendEvent(res, chatChunk(m, {}, undefined, false, r.value));
    if (body.includeUsage) sendEvent(res, usageChunk(m, usage(promptTokens.length, n)));
    sendEvent(res, "[DONE]");
    res.end();
  }

  async function completions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseCompletionBody(await readJson(req, limit), (id) => model.isToken(id));
    const ids = typeof body.prompt === "string" ? model.encode(body.prompt) : [...body.prompt];
    const out = model.generate({
      promptTokens: ids,
      maxTokens: budget(ids.length, body, 0),
      minTokens: DEMO_COMPLETION_MIN_TOKENS,
      temperature: body.temperature,
      ...(body.seed === undefined ? {} : { seed: body.seed }),
      topLogprobs: body.logprobs ?? 0,
    });
    const answer = out.tokens.map((t) => t.text).join("");
    const promptText = typeof body.prompt === "string" ? body.prompt : model.decode(ids);
    let logprobs: ReturnType<typeof legacyLogprobs> | null = null;
    if (body.logprobs !== undefined) {
      const listed: LegacyToken[] = [];
      if (body.echo) {
        // The first prompt token has nothing before it to be predicted from.
        listed.push({ text: model.tokenText(ids[0] as number), logprob: null, top: null });
        listed.push(...model.score(ids.slice(0, 1), ids.slice(1), body.logprobs));
      }
      listed.push(...out.tokens);
      logprobs = legacyLogprobs(listed);
    }
    const text = body.echo ? promptText + answer : answer;
    sendJson(
      res,
      200,
      textCompletion(meta("cmpl"), text, logprobs, out.finishReason, usage(ids.length, out.tokens.length)),
    );
  }

  async function tokenize(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseTokenizeBody(await readJson(req, limit));
    const text =
      body.kind === "prompt"
        ? body.prompt
        : renderChatPrompt(body.messages, { addGenerationPrompt: body.addGenerationPrompt });
    const tokens = model.encode(text);
    sendJson(res, 200, {
      tokens,
      count: tokens.length,
      max_model_len: DEMO_CONTEXT_LENGTH,
      ...(body.returnTokenStrs ? { token_strs: tokens.map((t) => model.tokenText(t)) } : {}),
    });
  }

  async function embeddings(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseEmbeddingsBody(await readJson(req, limit));
    const tokens = body.input.reduce((n, text) => n + model.encode(text).length, 0);
    sendJson(res, 200, {
      object: "list",
      data: body.input.map((text, index) => ({
        object: "embedding",
        index,
        embedding: demoEmbedding(text, body.dimensions),
      })),
      model: DEMO_EMBEDDING_MODEL_ID,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    });
  }

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => void | Promise<void>> = {
    "GET /health": (_req, res) => sendJson(res, 200, { status: "ok" }),
    "GET /v1/models": (_req, res) =>
      sendJson(res, 200, {
        object: "list",
        data: [
          {
            id: DEMO_MODEL_ID,
            object: "model",
            created: 0,
            owned_by: "tensorclaw",
            max_model_len: DEMO_CONTEXT_LENGTH,
          },
        ],
      }),
    "POST /v1/chat/completions": chat,
    "POST /v1/completions": completions,
    "POST /v1/embeddings": embeddings,
    "POST /tokenize": tokenize,
    // vLLM serves /tokenize at the root; a judge configured with a `…/v1` base URL may look here.
    "POST /v1/tokenize": tokenize,
  };

  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const route = routes[`${req.method} ${path}`];
    const run = async () => {
      if (route === undefined) throw new TensorClawError("not_found", `No route ${req.method} ${path}.`);
      await route(req, res);
    };
    run().catch((err: unknown) => {
      // A model-side RangeError is a request the checks let through: still the caller's input.
      const e = err instanceof RangeError ? new TensorClawError("invalid_request", err.message) : err;
      if (!(e instanceof TensorClawError)) opts.onInternalError?.(e);
      sendError(res, e);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
