/**
 * Token counts for backends that do not report usage, with a real BPE
 * tokenizer (gpt-tokenizer's o200k_base, the encoding of current OpenAI
 * models). Other model families tokenize differently, so these are
 * estimates; the router bounds credited usage by the bytes it relayed
 * anyway. Special-token text in user input (`<|endoftext|>`) is counted as
 * plain text instead of throwing, since the input comes from the network.
 */
import { countTokens } from "gpt-tokenizer";
import type { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";

const PLAIN = { disallowedSpecial: new Set<string>() };

/** Per-message framing tokens in OpenAI chat formats (role and separators). */
const TOKENS_PER_MESSAGE = 3;
/** Tokens that prime the assistant's reply. */
const REPLY_PRIMER_TOKENS = 3;

/** Tokens in a piece of text. */
export function countTextTokens(text: string): number {
  return text === "" ? 0 : countTokens(text, PLAIN);
}

/**
 * Estimated prompt tokens of a chat request: each message's role, name and
 * content (text parts of a part array, tool calls and their arguments), plus
 * the chat framing, plus the tool definitions.
 */
export function countPromptTokens(chat: ChatRequest): number {
  let total = REPLY_PRIMER_TOKENS;
  for (const m of chat.messages) {
    total += TOKENS_PER_MESSAGE + countTextTokens(m.role) + countTextTokens(m.name);
    if (m.content !== undefined) total += countTextTokens(m.content);
    else if (m.contentPartsJson !== "") total += countTextTokens(textOfParts(m.contentPartsJson));
    for (const t of m.toolCalls)
      total += countTextTokens(t.functionName) + countTextTokens(t.functionArguments);
  }
  for (const t of chat.tools) {
    total += countTextTokens(t.name) + countTextTokens(t.description) + countTextTokens(t.parametersJson);
  }
  return total;
}

function textOfParts(json: string): string {
  try {
    const parts: unknown = JSON.parse(json);
    if (!Array.isArray(parts)) return "";
    return parts
      .map((p) =>
        typeof p === "object" && p !== null && typeof (p as { text?: unknown }).text === "string"
          ? (p as { text: string }).text
          : "",
      )
      .join("\n");
  } catch {
    return "";
  }
}

/**
 * Counts completion tokens as they stream. Text is accumulated per kind and
 * tokenized once at the end: tokenizing each delta alone would over-count
 * wherever a delta boundary falls inside a BPE token.
 */
export class CompletionTokenCounter {
  #content = "";
  #reasoning = "";
  #toolText = "";

  /** Records one streamed delta. */
  add(content: string, reasoning: string, toolText: string): void {
    this.#content += content;
    this.#reasoning += reasoning;
    this.#toolText += toolText;
  }

  /** Tokens in everything added so far. */
  total(): number {
    return (
      countTextTokens(this.#content) + countTextTokens(this.#reasoning) + countTextTokens(this.#toolText)
    );
  }
}
