/**
 * The adversary of the verification test: an OpenAI-compatible backend
 * (node:http on 127.0.0.1, port 0) that has no model behind it. It serves
 * one model id and answers requests that look like the *old* probes (one
 * short user message, `max_tokens` of 5 or less, no sampling parameters)
 * correctly, by forwarding them to a real server of that model; everything
 * else gets filler text (lorem ipsum) with honest usage counts for that
 * filler. Before issue #15 such a miner passed every probe and earned on
 * every user request; audits must now catch it.
 *
 * It also embeds (`POST /v1/embeddings`) without an embedding model: each
 * text gets a unit vector of the demo model's length hashed from its words
 * spelled backwards, shaped like the demo embedding model's and pointing
 * elsewhere.
 *
 * Every chat and embeddings request is recorded with how it was answered, so
 * a test can see whether users still reach it and whether probes still do.
 */
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { countTokens } from "gpt-tokenizer";
import { demoEmbedding } from "../../common/demo-model/embedding.js";

/** The filler vocabulary: no word of it is likely under a language model asked anything. */
export const FILLER_WORDS = [
  "lorem",
  "ipsum",
  "dolor",
  "sit",
  "amet",
  "consectetur",
  "adipiscing",
  "elit",
  "sed",
  "do",
  "eiusmod",
  "tempor",
  "incididunt",
  "ut",
  "labore",
  "et",
  "dolore",
  "magna",
  "aliqua",
] as const;

/** Filler words in an answer when the request sets no smaller `max_tokens`. */
export const FILLER_ANSWER_WORDS = 40;
/** What an old probe's one user message was at most (a short templated question). */
const OLD_PROBE_MAX_CHARS = 200;
/** Body fields that make a request "sampled": the old probes never set one. */
const SAMPLING_FIELDS = [
  "temperature",
  "top_p",
  "seed",
  "frequency_penalty",
  "presence_penalty",
  "stop",
  "logprobs",
  "top_logprobs",
  "n",
] as const;

/** How a recorded request was answered. */
export type FillerRoute = "forwarded" | "filler";

/** One chat or embeddings request the filler backend received. */
export interface FillerRequest {
  /** When it arrived (Unix ms). */
  readonly atMs: number;
  readonly body: Record<string, unknown>;
  readonly route: FillerRoute;
  /** The filler text sent (empty for forwarded requests). */
  readonly text: string;
}

/** True when `text` holds filler words (case-insensitive, as whole words). */
export function hasFillerText(text: string): boolean {
  return /\b(lorem|ipsum|consectetur|adipiscing|eiusmod)\b/i.test(text);
}

/**
 * Whether a chat body looks like the probes before issue #15: exactly one
 * user message of short plain text, `max_tokens` (or
 * `max_completion_tokens`) of 5 or less, and no sampling parameter.
 */
export function looksLikeOldProbe(body: Readonly<Record<string, unknown>>): boolean {
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length !== 1) return false;
  const m = messages[0] as { role?: unknown; content?: unknown } | undefined;
  if (m?.role !== "user" || typeof m.content !== "string" || m.content.length > OLD_PROBE_MAX_CHARS) {
    return false;
  }
  const max = body.max_tokens ?? body.max_completion_tokens;
  if (typeof max !== "number" || max > 5) return false;
  return SAMPLING_FIELDS.every((f) => body[f] === undefined);
}

/** The filler answer for a request: words of FILLER_WORDS, as many as `max_tokens` allows. */
export function fillerPieces(body: Readonly<Record<string, unknown>>): { pieces: string[]; capped: boolean } {
  const max = body.max_tokens ?? body.max_completion_tokens;
  const capped = typeof max === "number" && max >= 0 && max < FILLER_ANSWER_WORDS;
  const n = capped ? (max as number) : FILLER_ANSWER_WORDS;
  const pieces = Array.from({ length: n }, (_, i) => {
    const w = FILLER_WORDS[i % FILLER_WORDS.length] as string;
    return i === 0 ? w[0]?.toUpperCase() + w.slice(1) : ` ${w}`;
  });
  return { pieces, capped };
}

/** The filler's vector for `text`: the demo model's kind of vector, of the words spelled backwards. */
export function fillerEmbedding(text: string): number[] {
  return demoEmbedding(text.replace(/[\p{L}\p{N}]+/gu, (w) => [...w].reverse().join("")));
}

/** Prompt tokens of a chat body, counted like a backend that reports its own usage. */
function promptTokens(body: Readonly<Record<string, unknown>>): number {
  const messages = Array.isArray(body.messages) ? body.messages : [];
  let n = 3;
  for (const m of messages) {
    const content = (m as { content?: unknown }).content;
    n +=
      3 + (typeof content === "string" ? countTokens(content) : countTokens(JSON.stringify(content ?? "")));
  }
  return n;
}

/** A running filler backend; close it in an `after` hook. */
export class FillerBackend {
  /** Every chat request received, oldest first. */
  readonly requests: FillerRequest[] = [];
  readonly #server = createServer((req, res) => {
    this.#handle(req, res).catch(() => res.destroy());
  });
  readonly #model: string;
  readonly #referenceUrl: string;
  #port = 0;

  /** `referenceUrl` is the real server's OpenAI base URL, ending in `/v1`. */
  constructor(model: string, referenceUrl: string) {
    this.#model = model;
    this.#referenceUrl = referenceUrl.replace(/\/+$/, "");
  }

  /** Base URL ending in `/v1`, as a miner's `--backend` takes it. */
  get url(): string {
    return `http://127.0.0.1:${this.#port}/v1`;
  }

  async listen(): Promise<void> {
    this.#server.listen(0, "127.0.0.1");
    await once(this.#server, "listening");
    this.#port = (this.#server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeAllConnections();
    await closed;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");
    const path = (req.url ?? "/").split("?")[0];
    if (req.method === "GET" && path === "/v1/models") {
      const data = [{ id: this.#model, object: "model", owned_by: "filler", max_model_len: 8192 }];
      res
        .writeHead(200, { "content-type": "application/json" })
        .end(JSON.stringify({ object: "list", data }));
      return;
    }
    if (req.method === "POST" && path === "/v1/embeddings") {
      this.#embed(JSON.parse(raw) as Record<string, unknown>, res);
      return;
    }
    if (req.method !== "POST" || path !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(
        JSON.stringify({ error: { message: "not found", type: "not_found", param: null, code: null } }),
      );
      return;
    }
    const body = JSON.parse(raw) as Record<string, unknown>;
    if (looksLikeOldProbe(body)) {
      this.requests.push({ atMs: Date.now(), body, route: "forwarded", text: "" });
      await this.#forward(raw, res);
      return;
    }
    const { pieces, capped } = fillerPieces(body);
    this.requests.push({ atMs: Date.now(), body, route: "filler", text: pieces.join("") });
    this.#fill(body, pieces, capped ? "length" : "stop", res);
  }

  #embed(body: Record<string, unknown>, res: ServerResponse): void {
    const input = typeof body.input === "string" ? [body.input] : (body.input as string[]);
    this.requests.push({ atMs: Date.now(), body, route: "filler", text: "" });
    const tokens = input.reduce((n, t) => n + countTokens(t), 0);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        object: "list",
        data: input.map((t, index) => ({ object: "embedding", index, embedding: fillerEmbedding(t) })),
        model: this.#model,
        usage: { prompt_tokens: tokens, total_tokens: tokens },
      }),
    );
  }

  /** Relays the request to the real model server, status, headers and body as they come. */
  async #forward(raw: string, res: ServerResponse): Promise<void> {
    const abort = new AbortController();
    res.once("close", () => abort.abort());
    const up = await fetch(`${this.#referenceUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: raw,
      signal: abort.signal,
    });
    res.writeHead(up.status, { "content-type": up.headers.get("content-type") ?? "application/json" });
    if (up.body !== null) for await (const chunk of up.body) res.write(chunk);
    res.end();
  }

  #fill(
    body: Readonly<Record<string, unknown>>,
    pieces: string[],
    finish: string,
    res: ServerResponse,
  ): void {
    const prompt = promptTokens(body);
    const completion = pieces.length === 0 ? 0 : countTokens(pieces.join(""));
    const usage = { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion };
    const base = {
      id: `chatcmpl-filler-${this.requests.length}`,
      created: 1_700_000_000,
      model: this.#model,
    };
    if (body.stream !== true) {
      const message = { role: "assistant", content: pieces.join("") };
      res.writeHead(200, { "content-type": "application/json" });
      res.end(
        JSON.stringify({
          ...base,
          object: "chat.completion",
          choices: [{ index: 0, message, finish_reason: finish, logprobs: null }],
          usage,
        }),
      );
      return;
    }
    const chunk = (delta: unknown, finishReason: string | null) => ({
      ...base,
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
    });
    const events: Record<string, unknown>[] = [
      chunk({ role: "assistant", content: "" }, null),
      ...pieces.map((p) => chunk({ content: p }, null)),
      chunk({}, finish),
    ];
    const opts = body.stream_options as { include_usage?: unknown } | undefined;
    if (opts?.include_usage === true)
      events.push({ ...base, object: "chat.completion.chunk", choices: [], usage });
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    res.end(`${events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join("")}data: [DONE]\n\n`);
  }
}

/** Starts a filler backend for `model` that forwards old-style probes to `referenceUrl` (…/v1). */
export async function startFillerBackend(model: string, referenceUrl: string): Promise<FillerBackend> {
  const b = new FillerBackend(model, referenceUrl);
  await b.listen();
  return b;
}
