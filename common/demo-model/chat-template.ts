/**
 * The demo model's chat template: how a conversation becomes the plain text
 * the model continues. The miner's demo backend, the reference server's
 * `/v1/chat/completions` and its `/tokenize` (with `messages`) all render
 * prompts with this one function, so a validator that tokenizes a
 * conversation through the reference server gets exactly the tokens the
 * miner's model was conditioned on.
 *
 * The template is deliberately simple — one `role: content` line per message,
 * then `assistant:` — because the model learnt it from its own corpus, whose
 * dialogues are written in the same form.
 */

/** One message of a conversation, as the template sees it. */
export interface ChatTurn {
  readonly role: string;
  readonly content: string;
}

/** Options of {@link renderChatPrompt}. */
export interface RenderOptions {
  /**
   * End with `assistant:` so the model writes the next assistant turn
   * (vLLM's `add_generation_prompt`). Default true.
   */
  readonly addGenerationPrompt?: boolean;
}

/** The role the model answers as. */
export const ASSISTANT_ROLE = "assistant";

/**
 * Renders a conversation: `"<role>: <content>\n"` per message, then
 * `"assistant:"` when a generation prompt is asked for. The answer the model
 * writes after it starts with a space, as in its corpus.
 */
export function renderChatPrompt(messages: readonly ChatTurn[], opts: RenderOptions = {}): string {
  let text = "";
  for (const m of messages) text += `${m.role}: ${m.content}\n`;
  return opts.addGenerationPrompt === false ? text : `${text}${ASSISTANT_ROLE}:`;
}
