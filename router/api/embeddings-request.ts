/**
 * `POST /v1/embeddings` bodies (OpenAI's schema): validated and turned into
 * the tunnel's EmbeddingRequest. Token-id inputs are refused: the router
 * routes text (its credit counts text tokens with the model's tokenizer).
 */
import { TensorClawError } from "../../common/errors.js";
import type { EmbeddingRequest } from "../../gen/tensorclaw/v1/chat.js";
import { MAX_EMBEDDING_DIMENSIONS } from "../tunnel/kind-check.js";
import { hashUser } from "./openai-request.js";

/** Most inputs in one request (OpenAI's own limit). */
export const MAX_EMBEDDING_INPUTS = 2048;

/** How the vectors are written in the answer. */
export type EncodingFormat = "float" | "base64";

/** A validated embeddings request. */
export interface ParsedEmbeddingRequest {
  readonly model: string;
  readonly embedding: EmbeddingRequest;
  readonly encodingFormat: EncodingFormat;
  /** UTF-8 bytes of all inputs (the prompt's size for the usage bounds). */
  readonly inputBytes: number;
}

function bad(param: string, message: string): never {
  throw new TensorClawError("invalid_request", message, { param });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The inputs of `input`: a string or an array of strings, each non-empty. */
function inputsOf(input: unknown): string[] {
  if (typeof input === "string") {
    if (input === "") bad("input", "`input` must not be empty.");
    return [input];
  }
  if (!Array.isArray(input)) bad("input", "`input` must be a string or an array of strings.");
  if (input.length === 0) bad("input", "`input` must hold at least one string.");
  if (input.length > MAX_EMBEDDING_INPUTS) {
    bad("input", `\`input\` may hold at most ${MAX_EMBEDDING_INPUTS} strings, not ${input.length}.`);
  }
  const out: string[] = [];
  for (const item of input) {
    if (typeof item === "number" || Array.isArray(item)) {
      bad("input", "`input` must be text: token-id arrays are not supported by this router.");
    }
    if (typeof item !== "string") bad("input", "`input` must be a string or an array of strings.");
    if (item === "") bad("input", "Each string of `input` must be non-empty.");
    out.push(item);
  }
  return out;
}

/**
 * Validates an embeddings body (parsed JSON). Throws `invalid_request`
 * naming the field at fault. The whole body is already bounded by the
 * API's body limit, which bounds the inputs' total size.
 */
export function parseEmbeddingBody(
  body: unknown,
  opts: { readonly userSalt: string; readonly account: string },
): ParsedEmbeddingRequest {
  if (!isObject(body)) bad("body", "The request body must be a JSON object.");
  if (typeof body.model !== "string" || body.model === "")
    bad("model", "`model` must be a non-empty string.");
  const input = inputsOf(body.input);
  let dimensions: number | undefined;
  if (body.dimensions !== undefined && body.dimensions !== null) {
    const d = body.dimensions;
    if (typeof d !== "number" || !Number.isInteger(d) || d < 1 || d > MAX_EMBEDDING_DIMENSIONS) {
      bad("dimensions", `\`dimensions\` must be an integer from 1 to ${MAX_EMBEDDING_DIMENSIONS}.`);
    }
    dimensions = d;
  }
  const format = body.encoding_format ?? "float";
  if (format !== "float" && format !== "base64") {
    bad("encoding_format", '`encoding_format` must be "float" or "base64".');
  }
  if (body.user !== undefined && body.user !== null && typeof body.user !== "string") {
    bad("user", "`user` must be a string.");
  }
  const user =
    typeof body.user === "string" && body.user !== "" ? hashUser(body.user, opts.account, opts.userSalt) : "";
  let inputBytes = 0;
  for (const s of input) inputBytes += Buffer.byteLength(s, "utf8");
  return {
    model: body.model,
    embedding: { input, dimensions, user },
    encodingFormat: format,
    inputBytes,
  };
}

/**
 * One vector as the answer writes it: numbers, or with `base64` the
 * little-endian float32 bytes in base64 (what OpenAI sends, and what the
 * `openai` client asks for by default and decodes).
 */
export function encodeVector(values: Float32Array, format: EncodingFormat): number[] | string {
  if (format === "float") return Array.from(values);
  const bytes = Buffer.alloc(values.length * 4);
  for (let i = 0; i < values.length; i++) bytes.writeFloatLE(values[i] as number, i * 4);
  return bytes.toString("base64");
}
