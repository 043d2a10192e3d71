/**
 * The OpenAI `/v1/embeddings` exchange of an OpenAI-compatible backend:
 * the body the miner posts (always `encoding_format: "float"`, whatever the
 * user asked: the router encodes base64 itself) and the checks on what comes
 * back. The backend is untrusted like everything else: an answer that does
 * not hold exactly one numeric vector per input is a BACKEND_ERROR, never
 * relayed.
 */
import type { EmbeddingRequest } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { BackendFailure, type EmbeddingResult } from "./backend.js";

const BACKEND_ERROR = RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR;

/** The JSON body posted to the backend's `/embeddings`. */
export function embeddingRequestBody(model: string, req: EmbeddingRequest): Record<string, unknown> {
  return {
    model,
    input: req.input,
    encoding_format: "float",
    ...(req.dimensions === undefined ? {} : { dimensions: req.dimensions }),
    ...(req.user === "" ? {} : { user: req.user }),
  };
}

/** The vectors of a backend's `/embeddings` answer, in input order, checked. */
export function embeddingsFromResponse(doc: unknown, inputs: number): EmbeddingResult {
  const data = (doc as { data?: unknown } | null)?.data;
  if (!Array.isArray(data))
    throw new BackendFailure(BACKEND_ERROR, "the backend's embeddings answer has no data list");
  const vectors: (number[] | undefined)[] = new Array(inputs).fill(undefined);
  for (const item of data) {
    const index = (item as { index?: unknown } | null)?.index;
    const values = (item as { embedding?: unknown } | null)?.embedding;
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index >= inputs) {
      throw new BackendFailure(BACKEND_ERROR, "the backend sent an embedding for no input");
    }
    if (vectors[index] !== undefined)
      throw new BackendFailure(BACKEND_ERROR, "the backend embedded an input twice");
    if (!Array.isArray(values) || !values.every((v) => typeof v === "number" && Number.isFinite(v))) {
      throw new BackendFailure(BACKEND_ERROR, "the backend sent an embedding that is not a list of numbers");
    }
    vectors[index] = values as number[];
  }
  const complete = vectors.filter((v): v is number[] => v !== undefined);
  if (complete.length !== inputs) {
    throw new BackendFailure(BACKEND_ERROR, `the backend embedded ${complete.length} of ${inputs} inputs`);
  }
  const usage = (doc as { usage?: { prompt_tokens?: unknown } }).usage?.prompt_tokens;
  const promptTokens =
    typeof usage === "number" && Number.isSafeInteger(usage) && usage >= 0 ? usage : undefined;
  return { vectors: complete, promptTokens };
}
