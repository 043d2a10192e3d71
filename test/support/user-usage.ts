/**
 * What a user's client sees of one chat request's usage, for the whole-loop
 * tests that compare it with the ledger.
 */
import type OpenAI from "openai";

/**
 * Sends one user message to `model` (streamed with `include_usage`, or as
 * one JSON answer) and resolves with the answer's `usage.total_tokens` as
 * the official client received it; rejects as the client does.
 */
export async function userTotalTokens(
  openai: OpenAI,
  model: string,
  content: string,
  stream: boolean,
): Promise<number> {
  const messages = [{ role: "user" as const, content }];
  if (!stream) return (await openai.chat.completions.create({ model, messages })).usage?.total_tokens ?? 0;
  const chunks = await openai.chat.completions.create({
    model,
    messages,
    stream: true,
    stream_options: { include_usage: true },
  });
  let total = 0;
  for await (const chunk of chunks) total += chunk.usage?.total_tokens ?? 0;
  return total;
}
