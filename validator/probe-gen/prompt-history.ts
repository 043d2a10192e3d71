import type { Phrasebook } from "./prompt-languages.js";
import { PEOPLE, paragraph, textOfBytes } from "./prompt-sentences.js";
import type { Topic } from "./prompt-topics.js";
import { chance, int, list, pick, type Random } from "./random.js";

/*
 * Earlier turns of a conversation: what the assistant answered before and
 * how users follow up ("can you give an example?", "what about X?"), so a
 * multi-turn probe reads like a real chat history on one topic.
 */

const REPLY_OPENERS = list(`
  Sure!; Great question.; Here's a quick overview:; Of course.; Happy to help.; Good point.
  Absolutely.; Let me break it down.; Short answer: it depends.; Here's what I'd suggest:`);

const GREETINGS = list(`
  Hi! How can I help you today?; Hello! What can I do for you?; Hey there, what would you like to know?
  Hi, I'm your assistant. Ask me anything.; Welcome back! What are we working on today?`);

const FOLLOW_UPS: readonly ((t: Topic, term: string, name: string) => string)[] = [
  () => "Can you give me an example?",
  () => "Thanks! Can you make that shorter?",
  (_t, x) => `What about ${x}?`,
  (_t, x) => `Can you go into more detail on ${x}?`,
  () => "I don't get it. Can you explain it differently?",
  (_t, x) => `ok and how does that relate to ${x}?`,
  () => "That's helpful. What would you do first?",
  (t) => `Is this the same everywhere, or does ${t.name} work differently in other countries?`,
  () => "Can you put that in a table?",
  () => "Wait, is that really true? Do you have a source?",
  (_t, x) => `Could you compare that with ${x}?`,
  () => "Great, now summarise everything in three bullet points.",
  () => "Can you make it sound less formal?",
  (t) => `What's the most common beginner mistake with ${t.name}?`,
  () => "How long would that take, roughly?",
  () => "perfect. one more thing:",
  (_t, x) => `Why does ${x} matter so much here?`,
  () => "Could you rewrite that for a ten-year-old?",
  (_t, _x, n) => `My friend ${n} disagrees. What would you say to them?`,
  () => "Thanks. Any resources you'd recommend?",
];

/** An assistant greeting that opens a chat before the user's first message. */
export function greeting(random: Random): string {
  return pick(random, GREETINGS);
}

/** An earlier assistant answer about `topic`, of about `bytes` bytes. */
export function assistantReply(random: Random, topic: Topic, bytes: number): string {
  const opener = pick(random, REPLY_OPENERS);
  if (bytes < 240) return `${opener} ${paragraph(random, topic, int(random, 1, 2))}`;
  const body = textOfBytes(random, topic, bytes - opener.length);
  if (chance(random, 0.3)) {
    const points = topic.terms.map((t) => `- **${t}**: ${paragraph(random, topic, 1)}`).join("\n");
    return `${opener}\n\n${points}\n\n${body}`;
  }
  return `${opener}\n\n${body}`;
}

/** A user's follow-up on an earlier answer about `topic`. */
export function followUp(random: Random, topic: Topic): string {
  return pick(random, FOLLOW_UPS)(topic, pick(random, topic.terms), pick(random, PEOPLE));
}

/** Sentences of a phrasebook about topic `t`, about `bytes` bytes (at least one). */
export function phrasebookText(random: Random, pb: Phrasebook, t: string, bytes: number): string {
  const out: string[] = [];
  let size = 0;
  do {
    const s = pick(random, pb.sentences)(t, int(random, 3, 40), pick(random, PEOPLE));
    out.push(s);
    size += Buffer.byteLength(s, "utf8") + 1;
  } while (size < bytes);
  return out.join(" ");
}

/** An earlier assistant answer in a phrasebook's language. */
export function phrasebookReply(random: Random, pb: Phrasebook, t: string, bytes: number): string {
  return `${pick(random, pb.replies)} ${phrasebookText(random, pb, t, Math.max(60, bytes))}`;
}
