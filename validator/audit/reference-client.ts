/**
 * HTTP calls to a reference server: an OpenAI-compatible server of the same
 * open-weight model (vLLM in production, the demo reference server in
 * development and tests) that tokenizes and returns prompt logprobs.
 *
 *   POST {root}/tokenize        {model, messages, add_generation_prompt: true} -> {tokens}
 *   POST {root}/tokenize        {model, prompt, add_special_tokens}           -> {tokens}
 *                               (false for an answer, true for a completion prompt)
 *   POST {root}/v1/completions  {model, prompt: ids, echo, logprobs, max_tokens: 0, temperature: 0}
 *   POST {root}/v1/chat/completions  (the reference's own answers, for calibration and graded prompts)
 *   POST {root}/v1/completions  {model, prompt: text, temperature: 0, ...} (its own completions, likewise)
 *   POST {root}/v1/embeddings   {model, input, encoding_format: "float"} (a model that serves embeddings)
 *
 * `{root}` is the server's root URL. vLLM serves `/tokenize` at the root
 * and the OpenAI API under `/v1`, so the `--reference` URL may be given
 * either way (`http://host:8000` or `http://host:8000/v1`): a trailing
 * `/v1` is dropped. A path prefix before it (a proxy) is kept.
 *
 * Everything the server says is untrusted: every call has a deadline,
 * bodies are size-capped, and answers are checked field by field. Any
 * failure is a ReferenceServerError, which makes an audit unverifiable.
 */
import { Pool } from "undici";

/** A reference server failed, timed out or answered something unusable. */
export class ReferenceServerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ReferenceServerError";
  }
}

/** One chat message as JSON, passed to the server as given (role, content, ...). */
export type ChatMessageJson = Readonly<Record<string, unknown>>;

/** Settings of a reference client. */
export interface ReferenceClientOptions {
  /** Root URL of the server (`http://host:8000`; a trailing `/v1` is accepted and dropped). */
  readonly baseUrl: string;
  /** Model id the server serves, sent in every body. */
  readonly model: string;
  /** Deadline of each call in ms (default {@link DEFAULT_REFERENCE_TIMEOUT_MS}). */
  readonly timeoutMs?: number;
  /** Largest answer body accepted in bytes (default {@link DEFAULT_REFERENCE_MAX_BODY_BYTES}). */
  readonly maxBodyBytes?: number;
  /** Bearer key, when the server wants one (vLLM `--api-key`). */
  readonly apiKey?: string;
}

/** Default deadline of one reference call. */
export const DEFAULT_REFERENCE_TIMEOUT_MS = 30_000;
/** Default answer size cap: an echo of a few thousand positions with top-20 alternatives fits. */
export const DEFAULT_REFERENCE_MAX_BODY_BYTES = 16 * 1024 * 1024;
/** Most token ids accepted from one tokenize answer. */
export const MAX_TOKEN_IDS = 1 << 17;
/** Characters of an error answer kept in the error message. */
const ERROR_TEXT_CHARS = 200;

/** The origin and path prefix of a `--reference` URL; throws a plain Error naming what is wrong. */
export function referenceRoot(baseUrl: string): { origin: string; prefix: string } {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new Error(`reference URL ${JSON.stringify(baseUrl)} is not a URL`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new Error(`reference URL must be http or https, not ${url.protocol}`);
  }
  if (url.search !== "" || url.hash !== "") throw new Error("reference URL takes no query or fragment");
  const prefix = url.pathname.replace(/\/+$/, "").replace(/\/v1$/, "");
  return { origin: url.origin, prefix };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** The `tokens` of a tokenize answer, checked. */
export function parseTokenIds(body: unknown): number[] {
  const tokens = isRecord(body) ? body.tokens : undefined;
  if (!Array.isArray(tokens)) throw new ReferenceServerError("tokenize answer has no tokens array");
  if (tokens.length > MAX_TOKEN_IDS) throw new ReferenceServerError("tokenize answer is too long");
  for (const t of tokens) {
    if (!Number.isSafeInteger(t) || (t as number) < 0) {
      throw new ReferenceServerError("tokenize answer holds something other than token ids");
    }
  }
  return tokens as number[];
}

/** Most values accepted in one embedding vector. */
export const MAX_EMBEDDING_VALUES = 1 << 16;

/**
 * The vectors of an embeddings answer for `inputs` inputs, in input order,
 * checked: one vector per input (by `index`), finite numbers, all of one
 * non-zero length.
 */
export function parseEmbeddings(body: unknown, inputs: number): number[][] {
  const data = isRecord(body) ? body.data : undefined;
  if (!Array.isArray(data)) throw new ReferenceServerError("embeddings answer has no data array");
  if (data.length !== inputs) {
    throw new ReferenceServerError(`embeddings answer has ${data.length} vectors for ${inputs} inputs`);
  }
  const out = new Array<number[] | undefined>(inputs).fill(undefined);
  for (const d of data) {
    const index = isRecord(d) ? d.index : undefined;
    const values = isRecord(d) ? d.embedding : undefined;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= inputs) {
      throw new ReferenceServerError("embeddings answer has a vector without a valid index");
    }
    if (out[index] !== undefined) throw new ReferenceServerError(`embeddings answer repeats index ${index}`);
    if (
      !Array.isArray(values) ||
      values.length === 0 ||
      values.length > MAX_EMBEDDING_VALUES ||
      !values.every((x) => typeof x === "number" && Number.isFinite(x))
    ) {
      throw new ReferenceServerError(`embeddings answer vector ${index} is not a list of numbers`);
    }
    out[index] = values as number[];
  }
  const vectors = out as number[][];
  if (vectors.some((v) => v.length !== vectors[0]?.length)) {
    throw new ReferenceServerError("embeddings answer mixes vector lengths");
  }
  return vectors;
}

/** The text of a (legacy) completion answer, checked. */
export function parseCompletionText(body: unknown): string {
  const choice = isRecord(body) && Array.isArray(body.choices) ? body.choices[0] : undefined;
  const text = isRecord(choice) ? choice.text : undefined;
  if (typeof text !== "string") throw new ReferenceServerError("completion answer has no choices[0].text");
  return text;
}

/** The assistant text of a chat completion answer, checked. */
export function parseChatContent(body: unknown): string {
  const choice = isRecord(body) && Array.isArray(body.choices) ? body.choices[0] : undefined;
  const message = isRecord(choice) ? choice.message : undefined;
  const content = isRecord(message) ? message.content : undefined;
  if (typeof content !== "string")
    throw new ReferenceServerError("chat answer has no choices[0].message.content");
  return content;
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.name === "TimeoutError" ? "timed out" : err.message;
  return String(err);
}

/** A keep-alive client of one reference server. */
export class ReferenceClient {
  readonly model: string;
  readonly #pool: Pool;
  readonly #prefix: string;
  readonly #timeoutMs: number;
  readonly #maxBodyBytes: number;
  readonly #headers: Record<string, string>;

  constructor(opts: ReferenceClientOptions) {
    const { origin, prefix } = referenceRoot(opts.baseUrl);
    this.model = opts.model;
    this.#prefix = prefix;
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_REFERENCE_TIMEOUT_MS;
    this.#maxBodyBytes = opts.maxBodyBytes ?? DEFAULT_REFERENCE_MAX_BODY_BYTES;
    this.#headers = { "content-type": "application/json", accept: "application/json" };
    if (opts.apiKey !== undefined && opts.apiKey !== "")
      this.#headers.authorization = `Bearer ${opts.apiKey}`;
    this.#pool = new Pool(origin, { connections: 8 });
  }

  /**
   * Prompt token ids of a conversation under the model's chat template, with
   * the reply primer; `tools` (the request's, when it offered some) go in too,
   * since a template renders them into the prompt the miner's model saw.
   */
  async tokenizeChat(
    messages: readonly ChatMessageJson[],
    tools: readonly ChatMessageJson[] = [],
  ): Promise<number[]> {
    return parseTokenIds(
      await this.#post("/tokenize", {
        model: this.model,
        messages,
        add_generation_prompt: true,
        ...(tools.length > 0 ? { tools } : {}),
      }),
    );
  }

  /**
   * Token ids of a plain text: an answer without special tokens, or with
   * `addSpecialTokens` a completion prompt as the server tokenizes one it is
   * sent (a beginning-of-text token, for models that have one).
   */
  async tokenizeText(text: string, addSpecialTokens = false): Promise<number[]> {
    return parseTokenIds(
      await this.#post("/tokenize", {
        model: this.model,
        prompt: text,
        add_special_tokens: addSpecialTokens,
      }),
    );
  }

  /** The raw completions answer echoing `ids` with their logprobs and `topK` alternatives (see reference-score.ts). */
  echoLogprobs(ids: readonly number[], topK: number): Promise<unknown> {
    return this.#post("/v1/completions", {
      model: this.model,
      prompt: ids,
      echo: true,
      logprobs: topK,
      max_tokens: 0,
      temperature: 0,
    });
  }

  /** The reference's own completion of a plain-text prompt at temperature 0. */
  async complete(prompt: string, maxTokens: number, seed: number): Promise<string> {
    return parseCompletionText(
      await this.#post("/v1/completions", {
        model: this.model,
        prompt,
        temperature: 0,
        seed,
        max_tokens: maxTokens,
        stream: false,
      }),
    );
  }

  /** The reference's own answer at temperature 0. */
  async chat(messages: readonly ChatMessageJson[], maxTokens: number, seed: number): Promise<string> {
    return parseChatContent(
      await this.#post("/v1/chat/completions", {
        model: this.model,
        messages,
        temperature: 0,
        seed,
        max_tokens: maxTokens,
        stream: false,
      }),
    );
  }

  /** The reference's vectors for `inputs`, in input order (the model's own dimensions). */
  async embeddings(inputs: readonly string[]): Promise<number[][]> {
    return parseEmbeddings(
      await this.#post("/v1/embeddings", { model: this.model, input: inputs, encoding_format: "float" }),
      inputs.length,
    );
  }

  async close(): Promise<void> {
    await this.#pool.close();
  }

  async #post(path: string, payload: unknown): Promise<unknown> {
    const signal = AbortSignal.timeout(this.#timeoutMs);
    let text: string;
    let status: number;
    try {
      const res = await this.#pool.request({
        method: "POST",
        path: `${this.#prefix}${path}`,
        headers: this.#headers,
        body: JSON.stringify(payload),
        signal,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
      status = res.statusCode;
      const parts: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        const b = chunk as Buffer;
        size += b.byteLength;
        if (size > this.#maxBodyBytes) {
          res.body.destroy();
          throw new ReferenceServerError(`${path}: answer larger than ${this.#maxBodyBytes} bytes`);
        }
        parts.push(b);
      }
      text = Buffer.concat(parts).toString("utf8");
    } catch (err) {
      if (err instanceof ReferenceServerError) throw err;
      throw new ReferenceServerError(`${path}: ${describe(signal.aborted ? signal.reason : err)}`, {
        cause: err,
      });
    }
    if (status < 200 || status >= 300) {
      throw new ReferenceServerError(
        `${path}: HTTP ${status} ${text.slice(0, ERROR_TEXT_CHARS).replace(/\s+/g, " ")}`.trimEnd(),
      );
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw new ReferenceServerError(`${path}: answer is not JSON`, { cause });
    }
  }
}
