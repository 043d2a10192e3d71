/**
 * Token counts for backends that do not report usage, with a real BPE
 * tokenizer (gpt-tokenizer's o200k_base, the encoding of current OpenAI
 * models). Other model families tokenize differently, so these are
 * estimates; the router credits at most its own count anyway. Special-token text in user input (`<|endoftext|>`) is counted as
 * plain text instead of throwing, since the input comes from the network.
 */
import { countTokens } from "gpt-tokenizer";
import { countPromptTokens as countPrompt } from "../../common/tokens/prompt.js";
import type { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";

const PLAIN = { disallowedSpecial: new Set<string>() };

/** Tokens in a piece of text. */
export function countTextTokens(text: string): number {
  return text === "" ? 0 : countTokens(text, PLAIN);
}

/**
 * Estimated prompt tokens of a chat request: each message's role, name and
 * content, the chat framing and the tool definitions (the same rule the
 * router counts with, common/tokens/prompt.ts).
 */
export function countPromptTokens(chat: ChatRequest): number {
  return countPrompt(chat, countTextTokens);
}

interface ChoiceText {
  content: string;
  reasoning: string;
  toolText: string;
}

/**
 * Counts completion tokens as they stream, over every choice. Text is
 * accumulated per choice and kind and tokenized once at the end:
 * tokenizing each delta alone would over-count wherever a delta boundary
 * falls inside a BPE token, and joining choices whose deltas interleave
 * would tokenize text no choice contains.
 */
export class CompletionTokenCounter {
  readonly #choices = new Map<number, ChoiceText>();

  /** Records one streamed delta of choice `choice`. */
  add(content: string, reasoning: string, toolText: string, choice = 0): void {
    let c = this.#choices.get(choice);
    if (c === undefined) {
      c = { content: "", reasoning: "", toolText: "" };
      this.#choices.set(choice, c);
    }
    c.content += content;
    c.reasoning += reasoning;
    c.toolText += toolText;
  }

  /** Tokens in everything added so far, all choices. */
  total(): number {
    let n = 0;
    for (const c of this.#choices.values()) {
      n += countTextTokens(c.content) + countTextTokens(c.reasoning) + countTextTokens(c.toolText);
    }
    return n;
  }
}
