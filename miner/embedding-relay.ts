/**
 * Sends an embeddings answer down the tunnel: the vectors go in chunks of
 * at most {@link MAX_VALUES_PER_CHUNK} values (so no chunk comes near the
 * tunnel's message limit), each spending flow-control credit like text
 * (4 bytes per value, common/chunk-credit.ts), then Usage with the inputs'
 * tokens and no completion tokens.
 */
import { embeddingBytes } from "../common/chunk-credit.js";
import type { Embedding, EmbeddingRequest } from "../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode, type ResponseChunk, type Usage } from "../gen/tensorclaw/v1/tunnel.js";
import { BackendFailure, type EmbeddingResult } from "./backend/backend.js";
import type { StopSignal } from "./backend/request-stop.js";
import { countTextTokens } from "./backend/token-counter.js";
import type { CreditWindow } from "./tunnel/credit-window.js";

/** Where the frames go (the request runner's sink). */
export interface EmbeddingSink {
  chunk(c: ResponseChunk): void;
  usage(u: Usage): void;
  writable(): Promise<void> | undefined;
}

/** Most vector values in one chunk (256 KiB of payload): well under any message limit. */
export const MAX_VALUES_PER_CHUNK = 65_536;

/** Vectors grouped into chunk-sized batches, in input order; a vector is never split. */
export function embeddingBatches(vectors: readonly (readonly number[])[]): Embedding[][] {
  const out: Embedding[][] = [];
  let batch: Embedding[] = [];
  let values = 0;
  vectors.forEach((v, index) => {
    if (batch.length > 0 && values + v.length > MAX_VALUES_PER_CHUNK) {
      out.push(batch);
      batch = [];
      values = 0;
    }
    batch.push({ index, values: [...v] });
    values += v.length;
  });
  if (batch.length > 0) out.push(batch);
  return out;
}

/** Relays `result` for `req`, ending with Usage. Throws a BackendFailure, or the stop reason once stopped. */
export async function relayEmbeddings(
  requestId: number,
  req: EmbeddingRequest,
  result: EmbeddingResult,
  io: { readonly sink: EmbeddingSink; readonly credit: CreditWindow; readonly signal: StopSignal },
): Promise<void> {
  if (result.vectors.length !== req.input.length) {
    throw new BackendFailure(
      RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR,
      `the backend embedded ${result.vectors.length} of ${req.input.length} inputs`,
    );
  }
  for (const embeddings of embeddingBatches(result.vectors)) {
    const chunk: ResponseChunk = {
      requestId,
      contentDelta: "",
      toolCalls: [],
      finishReason: 0,
      choiceIndex: 0,
      systemFingerprint: "",
      embeddings,
      reasoningDelta: "",
      logprobs: [],
    };
    const bytes = embeddingBytes(embeddings);
    if (!io.credit.fits(bytes)) await io.credit.waitFor(bytes, io.signal);
    const writable = io.sink.writable();
    if (writable !== undefined) await writable;
    if (io.signal.aborted) throw io.signal.reason;
    io.credit.spend(bytes);
    io.sink.chunk(chunk);
  }
  const promptTokens = result.promptTokens ?? req.input.reduce((n, text) => n + countTextTokens(text), 0);
  io.sink.usage({ requestId, promptTokens: BigInt(promptTokens), completionTokens: 0n });
}
