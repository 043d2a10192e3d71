/**
 * The demo model's training text: a few pages of plain English prose and
 * short dialogues, grouped by topic, turned into the documents the n-gram
 * counts are taken from.
 *
 * Each topic is one text. Blocks are separated by blank lines and line breaks
 * inside a block are spaces. A block whose lines start with `S:`, `Q:` and
 * `A:` is a dialogue (system, user, assistant turns); it becomes one document
 * rendered with the chat template, so the model learns to answer after
 * `assistant:` exactly as the template leaves it. Every other block is a
 * prose paragraph. Every document ends with the end-of-text token.
 */
import { type ChatTurn, renderChatPrompt } from "./chat-template.js";
import { GARDENING, SEA, STARS, WEATHER } from "./corpus-nature.js";
import { COOKING, HISTORY, NETWORKS, SMALL_TALK } from "./corpus-people.js";

/** One topic of the corpus. */
export interface CorpusTopic {
  readonly name: string;
  readonly text: string;
}

/** The built-in corpus. */
export const DEMO_CORPUS: readonly CorpusTopic[] = [
  { name: "networks", text: NETWORKS },
  { name: "weather", text: WEATHER },
  { name: "cooking", text: COOKING },
  { name: "history", text: HISTORY },
  { name: "gardening", text: GARDENING },
  { name: "sea", text: SEA },
  { name: "stars", text: STARS },
  { name: "small-talk", text: SMALL_TALK },
];

const ROLES: Readonly<Record<string, string>> = { "S:": "system", "Q:": "user", "A:": "assistant" };

/** The turns of a dialogue block, or undefined when the block is prose. */
function dialogueTurns(lines: readonly string[]): ChatTurn[] | undefined {
  if (!lines.some((l) => l.startsWith("Q:"))) return undefined;
  const turns: { role: string; content: string }[] = [];
  for (const line of lines) {
    const role = ROLES[line.slice(0, 2)];
    const last = turns.at(-1);
    if (role !== undefined) turns.push({ role, content: line.slice(2).trim() });
    else if (last !== undefined) last.content += ` ${line.trim()}`;
  }
  return turns;
}

/** The text of one dialogue document: the prompt up to `assistant:`, then the last answer. */
function dialogueText(turns: readonly ChatTurn[]): string {
  const last = turns.at(-1);
  if (last === undefined || last.role !== "assistant") {
    throw new Error("a corpus dialogue must end with an assistant turn");
  }
  return `${renderChatPrompt(turns.slice(0, -1))} ${last.content}`;
}

/** The documents (without their end-of-text token) of one topic's text. */
export function topicDocuments(text: string): string[] {
  const docs: string[] = [];
  for (const block of text.split(/\n\s*\n/)) {
    const lines = block
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "");
    if (lines.length === 0) continue;
    const turns = dialogueTurns(lines);
    docs.push(turns === undefined ? lines.join(" ") : dialogueText(turns));
  }
  return docs;
}
