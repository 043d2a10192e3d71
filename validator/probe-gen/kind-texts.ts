/**
 * Probe wording for the kinds of request other than chat. The router turns
 * a probe's chat messages into the kind it is sent as (probe.proto): each
 * message's text becomes one embeddings input, or the texts joined by blank
 * lines become one text-completion prompt. Messages drawn for chat (system
 * prompts, polite questions) would read like no embeddings or completions
 * user's input, and a miner could tell the probes apart by that alone. So
 * for those kinds the messages are replaced by texts of the kind's own:
 *
 * - embeddings: a batch of inputs, mostly one (a search query) or a few to
 *   a few dozen passages (documents being indexed), about one topic;
 * - completions: a passage that stops mid-sentence, or a "Q:/A:" prompt,
 *   left for the model to continue.
 *
 * With an operator corpus (`--probe-corpus`), embeddings inputs are the
 * corpus conversations' own user and assistant texts; a completion keeps
 * the corpus conversation as drawn (the operator's choice of wording).
 */
import type { ProbeCorpus } from "./corpus.js";
import { paragraph, sentence } from "./prompt-sentences.js";
import type { ChatMessageJson } from "./prompt-space.js";
import { TOPICS, type Topic } from "./prompt-topics.js";
import { chance, int, pick, type Random } from "./random.js";

/** Most inputs in one embeddings probe. */
export const MAX_EMBEDDING_PROBE_INPUTS = 48;

/** How many inputs an embeddings probe carries: mostly one query, else a batch of passages. */
function inputCount(random: Random): number {
  const x = random();
  if (x < 0.45) return 1;
  return x < 0.8 ? int(random, 2, 8) : int(random, 9, MAX_EMBEDDING_PROBE_INPUTS);
}

/** A search query about `topic`: a short question, or a few keywords. */
function query(random: Random, topic: Topic): string {
  const term = pick(random, topic.terms);
  if (chance(random, 0.4)) return `${term} ${pick(random, topic.terms)} ${topic.name}`.toLowerCase();
  return pick(random, [
    `how does ${term} work`,
    `What is ${term}?`,
    `${term} vs ${pick(random, topic.terms)}`,
    `best way to learn about ${topic.name}`,
    `why does ${term} matter for ${topic.name}`,
  ]);
}

/** The texts of a corpus conversation that are not instructions to the model. */
function corpusTexts(source: ProbeCorpus, random: Random): string[] {
  const e = source.draw(random);
  return e.messages
    .filter((m) => m.role === "user" || m.role === "assistant")
    .map((m) => m.content)
    .filter((c): c is string => typeof c === "string" && c.trim() !== "");
}

/** Messages whose texts become an embeddings probe's inputs (one user message per input). */
export function embeddingProbeMessages(random: Random, source?: ProbeCorpus): ChatMessageJson[] {
  const n = inputCount(random);
  const texts: string[] = [];
  if (source !== undefined) {
    // A few conversations' worth, as a user indexing their own chat logs would send.
    for (let tries = 0; texts.length < n && tries < 4 * n; tries++)
      texts.push(...corpusTexts(source, random));
  } else {
    const topic = pick(random, TOPICS);
    for (let i = 0; i < n; i++) {
      texts.push(
        n === 1 && chance(random, 0.7) ? query(random, topic) : paragraph(random, topic, int(random, 1, 5)),
      );
    }
  }
  const inputs = texts.slice(0, n);
  return (inputs.length > 0 ? inputs : ["."]).map((content) => ({ role: "user", content }));
}

/** A text for a completion probe to continue: a passage cut mid-sentence, or a question and answer prompt. */
export function completionProbeMessages(random: Random): ChatMessageJson[] {
  const topic = pick(random, TOPICS);
  if (chance(random, 0.3)) {
    return [{ role: "user", content: `Q: ${query(random, topic)}\nA:` }];
  }
  const next = sentence(random, topic).split(" ");
  const cut = next.slice(0, int(random, 2, Math.max(2, next.length - 2))).join(" ");
  return [{ role: "user", content: `${paragraph(random, topic, int(random, 1, 4))} ${cut}` }];
}
