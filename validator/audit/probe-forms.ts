/**
 * What the router sends a model that serves no chat, from a probe's chat
 * body (router/services/probe-kinds.ts): each message's text (a parts
 * array's text parts joined by newlines), empty ones left out; a text
 * completion gets them joined by blank lines as its one prompt, an
 * embeddings request gets them as its inputs ("." when none is left). A
 * judge must score an answer against exactly what the miner was asked.
 */
import { textOfParts } from "../../common/tokens/prompt.js";

function messageTexts(messages: unknown): string[] {
  const list = Array.isArray(messages) ? (messages as unknown[]) : [];
  return list
    .map((m) => (typeof m === "object" && m !== null ? (m as { content?: unknown }).content : undefined))
    .map((c) => (typeof c === "string" ? c : Array.isArray(c) ? textOfParts(JSON.stringify(c)) : ""))
    .filter((t) => t !== "");
}

/** The one prompt of the text completion the router sends for chat `messages`. */
export function completionTextOf(messages: unknown): string {
  return messageTexts(messages).join("\n\n");
}

/** The inputs of the embeddings request the router sends for chat `messages`. */
export function embeddingInputsOf(messages: unknown): string[] {
  const texts = messageTexts(messages);
  return texts.length > 0 ? texts : ["."];
}
