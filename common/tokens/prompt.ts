import type { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { TokenCount } from "./encodings.js";

/** Per-message framing tokens in OpenAI chat formats (role and separators). */
export const TOKENS_PER_MESSAGE = 3;
/** Tokens that prime the assistant's reply. */
export const REPLY_PRIMER_TOKENS = 3;

/**
 * Prompt tokens of a chat request under an encoding: each message's role,
 * name and content (text parts of a part array, tool calls and their
 * arguments), the chat framing, and the tool definitions. Chat templates of
 * other model families frame messages differently; that difference is what
 * the credit allowances cover (router/usage/token-credit.ts).
 */
export function countPromptTokens(chat: ChatRequest, count: TokenCount): number {
  let total = REPLY_PRIMER_TOKENS;
  for (const m of chat.messages) {
    total += TOKENS_PER_MESSAGE + count(m.role) + count(m.name);
    if (m.content !== undefined) total += count(m.content);
    else if (m.contentPartsJson !== "") total += count(textOfParts(m.contentPartsJson));
    for (const t of m.toolCalls) total += count(t.functionName) + count(t.functionArguments);
  }
  for (const t of chat.tools) total += count(t.name) + count(t.description) + count(t.parametersJson);
  return total;
}

/** The text parts of an OpenAI content-part array (JSON), joined; "" when it is not one. */
export function textOfParts(json: string): string {
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
