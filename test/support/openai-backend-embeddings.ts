/**
 * The test backend's `/v1/embeddings`: deterministic vectors a test can
 * recompute (value j of text t is (len(t) + j) / 100, `dimensions` long or
 * 4), and usage counted as one token per whitespace-separated word.
 */

/** Vector length when the request names no `dimensions`. */
export const BACKEND_EMBEDDING_DIMENSIONS = 4;

/** The vector the test backend returns for `text`. */
export function backendEmbedding(text: string, dimensions = BACKEND_EMBEDDING_DIMENSIONS): number[] {
  return Array.from({ length: dimensions }, (_, j) => (text.length + j) / 100);
}

/** The prompt tokens the test backend reports for `inputs`. */
export function backendEmbeddingTokens(inputs: readonly string[]): number {
  return inputs.reduce((n, s) => n + s.split(/\s+/).filter((w) => w !== "").length, 0);
}

/** The backend's answer to an embeddings body, or an error message for a malformed one. */
export function embeddingsAnswer(body: Record<string, unknown>): { status: number; json: unknown } {
  const input = typeof body.input === "string" ? [body.input] : body.input;
  if (!Array.isArray(input) || !input.every((s) => typeof s === "string")) {
    return { status: 400, json: { error: { message: "input must be text", type: "invalid_request_error" } } };
  }
  const dims = typeof body.dimensions === "number" ? body.dimensions : undefined;
  const tokens = backendEmbeddingTokens(input);
  return {
    status: 200,
    json: {
      object: "list",
      // Out of order on purpose: OpenAI-compatible servers need not keep input order in `data`.
      data: input
        .map((s, index) => ({ object: "embedding", index, embedding: backendEmbedding(s, dims) }))
        .reverse(),
      model: body.model,
      usage: { prompt_tokens: tokens, total_tokens: tokens },
    },
  };
}
