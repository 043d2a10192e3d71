/**
 * Scoring a miner's completion under the reference model, from the legacy
 * completions answer to `{prompt: [...promptIds, ...completionIds], echo:
 * true, logprobs: k, max_tokens: 0}` (vLLM's shape, which the demo
 * reference server copies):
 *
 *   choices[0].logprobs.token_logprobs  one number per echoed position (the first may be null)
 *   choices[0].logprobs.top_logprobs    one {token text: logprob} object per position
 *
 * Pure and defensive: the answer comes from another server and is checked
 * field by field; anything unexpected is a reason, never a score.
 */

/** What the reference model thinks of one completion. */
export interface ReferenceScore {
  /** Completion tokens scored. */
  readonly tokens: number;
  /** Mean natural-log probability of the completion's tokens under the reference (<= 0). */
  readonly meanLogprob: number;
  /** Share of the completion's tokens among the reference's `k` most likely at their position. */
  readonly topKShare: number;
}

/** A score, or why there is none. */
export type ScoreResult =
  | { readonly ok: true; readonly score: ReferenceScore }
  | { readonly ok: false; readonly reason: string };

// Logprobs within this of each other are a tie (servers round through float32).
const TIE = 1e-6;

function fail(reason: string): ScoreResult {
  return { ok: false, reason };
}

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/**
 * Rank of a token at one position: how many alternatives the reference
 * found strictly more likely. vLLM lists the actual token beside the top k
 * when it is not among them (k + 1 entries), and two token ids can share a
 * text, so membership is decided by logprob, not by key.
 */
function rankOf(logprob: number, top: Record<string, unknown>): number | undefined {
  let above = 0;
  for (const v of Object.values(top)) {
    if (typeof v !== "number" || Number.isNaN(v)) return undefined;
    if (v > logprob + TIE) above++;
  }
  return above;
}

/**
 * Scores the completion: its tokens are the echoed positions after the
 * `promptTokens` prompt positions. The echo must cover exactly prompt +
 * completion positions: a server that added or dropped a token (a BOS, a
 * generated token) would shift the alignment, and a shifted score must not
 * fail anybody.
 */
export function scoreEcho(
  body: unknown,
  promptTokens: number,
  completionTokens: number,
  topK: number,
): ScoreResult {
  if (completionTokens <= 0) return fail("empty completion");
  const choice = isRecord(body) && Array.isArray(body.choices) ? body.choices[0] : undefined;
  const lp = isRecord(choice) ? choice.logprobs : undefined;
  if (!isRecord(lp)) return fail("reference answer has no choices[0].logprobs");
  const values = lp.token_logprobs;
  const tops = lp.top_logprobs;
  if (!Array.isArray(values) || !Array.isArray(tops)) {
    return fail("reference logprobs lack token_logprobs or top_logprobs");
  }
  const expected = promptTokens + completionTokens;
  if (values.length !== expected || tops.length !== expected) {
    return fail(`reference echoed ${values.length} positions, expected ${expected}`);
  }
  let sum = 0;
  let inTop = 0;
  for (let i = promptTokens; i < expected; i++) {
    const v = values[i];
    // A logprob a hair above 0 is float rounding; more is nonsense.
    if (typeof v !== "number" || !Number.isFinite(v) || v > 1e-3) {
      return fail(`reference logprob at position ${i} is not a log-probability`);
    }
    const top = tops[i];
    if (!isRecord(top)) return fail(`reference top_logprobs at position ${i} is not an object`);
    const rank = rankOf(v, top);
    if (rank === undefined) return fail(`reference top_logprobs at position ${i} holds a non-number`);
    sum += Math.min(0, v);
    if (rank < topK) inTop++;
  }
  return {
    ok: true,
    score: {
      tokens: completionTokens,
      meanLogprob: sum / completionTokens,
      topKShare: inTop / completionTokens,
    },
  };
}
