/**
 * The test backend's `/v1/completions`: deterministic choices a test can
 * recompute. Choice `index` (prompt p, sample s) writes `max_tokens`
 * (default 4) pieces `p{p}s{s}w{i} `; with `logprobs` each piece has
 * logprob -(i + 1) / 10 and alternatives `{piece: lp, "alt": lp - 1}` cut
 * to the number asked. Usage: one prompt token per word, one per piece.
 */
import type { ServerResponse } from "node:http";

/** Pieces per choice when `max_tokens` is not given. */
export const BACKEND_COMPLETION_TOKENS = 4;

/** The pieces of one choice. */
export function backendCompletionPieces(
  prompt: number,
  sample: number,
  tokens = BACKEND_COMPLETION_TOKENS,
): string[] {
  return Array.from({ length: tokens }, (_, i) => `p${prompt}s${sample}w${i} `);
}

function legacy(pieces: string[], from: number, top: number) {
  const lps = pieces.map((_, i) => -(from + i + 1) / 10);
  return {
    tokens: pieces,
    token_logprobs: lps,
    top_logprobs: pieces.map((p, i) =>
      Object.fromEntries(
        [
          [p, lps[i] as number],
          ["alt", (lps[i] as number) - 1],
        ].slice(0, top),
      ),
    ),
    text_offset: [],
  };
}

/** Answers a completions body on `res` (JSON or SSE); returns the completion tokens written. */
export function answerCompletions(body: Record<string, unknown>, res: ServerResponse): number {
  const prompts = typeof body.prompt === "string" ? [body.prompt] : (body.prompt as string[]);
  const n = typeof body.n === "number" ? body.n : 1;
  const tokens = typeof body.max_tokens === "number" ? body.max_tokens : BACKEND_COMPLETION_TOKENS;
  const top = typeof body.logprobs === "number" ? body.logprobs : undefined;
  const promptTokens = prompts.reduce((k, p) => k + p.split(/\s+/).filter((w) => w !== "").length, 0);
  const choices = prompts.flatMap((_, p) =>
    Array.from({ length: n }, (_, s) => ({
      index: p * n + s,
      pieces: backendCompletionPieces(p, s, tokens),
    })),
  );
  const completionTokens = choices.length * tokens;
  const usage = {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
  const ident = { id: "cmpl-test", object: "text_completion", created: 1_700_000_000, model: body.model };
  if (body.stream !== true) {
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify({
        ...ident,
        choices: choices.map((c) => ({
          index: c.index,
          text: c.pieces.join(""),
          logprobs: top === undefined ? null : legacy(c.pieces, 0, top),
          finish_reason: "length",
        })),
        usage,
      }),
    );
    return completionTokens;
  }
  res.writeHead(200, { "content-type": "text/event-stream" });
  for (const c of choices) {
    c.pieces.forEach((piece, i) => {
      const choice = {
        index: c.index,
        text: piece,
        logprobs: top === undefined ? null : legacy([piece], i, top),
        finish_reason: i === c.pieces.length - 1 ? "length" : null,
      };
      res.write(`data: ${JSON.stringify({ ...ident, choices: [choice] })}\n\n`);
    });
  }
  const so = body.stream_options as { include_usage?: boolean } | undefined;
  if (so?.include_usage === true) res.write(`data: ${JSON.stringify({ ...ident, choices: [], usage })}\n\n`);
  res.end("data: [DONE]\n\n");
  return completionTokens;
}
