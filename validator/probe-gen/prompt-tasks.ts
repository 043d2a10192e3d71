import { textOfBytes } from "./prompt-sentences.js";
import type { Topic } from "./prompt-topics.js";
import { capitalise, chance, int, list, pick, type Random } from "./random.js";

/*
 * English user requests: a task (explain, summarise, translate, write code,
 * rewrite, classify, brainstorm, answer, continue a story, ...) about a
 * topic, wrapped in an opener and a closing constraint the way people type
 * them. Tasks that work on a text ("summarise this") carry generated
 * material, which is where a long prompt gets its length.
 */

/** Ways a message starts. */
export const OPENERS = list(`
  Hi! ; Hey, ; Quick question: ; Hello, ; Please help: ; I was wondering - ; ok so ; Hi there. ; Can you help me?
  Good morning! ; Hey there! ; So, ; Question: ; Help me out here: ; Hi, hope you're well. `).map(
  (s) => `${s} `,
);

/** Constraints a request ends with ("" is one of them). */
export const CLOSERS = list(`
  Keep it short.; Please be detailed.; Use bullet points.; Thanks!; Be concise.; No jargon please.
  Give an example too.; Thanks in advance.; Answer in two or three paragraphs.; Please be specific.
  Keep it under 200 words.; Use simple language.; A short answer is fine.; Explain your reasoning.
  Include a summary at the end.; Use headings.`);

const AUDIENCES = list(`
  a five-year-old; a high school student; a complete beginner; my grandmother; a busy manager
  a first-year university student; someone who knows the basics; an expert; a teenager; my team at work`);

/** Languages a translation can go into (named in English). */
export const TARGET_LANGUAGES = list(`
  Spanish; French; German; Italian; Portuguese; Dutch; Polish; Japanese; Korean; Turkish; Swedish; Indonesian`);

const PROGRAMMING_LANGUAGES = list(
  "Python; JavaScript; TypeScript; Go; Rust; Java; C#; C++; Ruby; Kotlin; PHP; Bash",
);

const CODE_JOBS = list(`
  reverses a linked list; checks whether a string is a palindrome; merges two sorted arrays
  parses a CSV file and sums one column; removes duplicates from a list while keeping the order
  finds the most common word in a text; validates an email address; converts Celsius to Fahrenheit
  reads a JSON file and prints the keys; retries an HTTP request with exponential backoff
  computes the nth Fibonacci number iteratively; flattens a nested list; groups records by a field
  counts the lines in a file; debounces a function call; checks if two strings are anagrams
  implements binary search; generates a random password; formats a number with thousands separators
  calculates the median of a list; rotates a matrix by 90 degrees; finds all primes below n
  converts a date string to ISO 8601; implements a simple LRU cache; chunks an array into pieces of size n
  sorts a list of objects by two keys; reads environment variables with defaults; pads a string to a width
  computes the difference between two dates in days; extracts all URLs from a text
  implements a stack with push, pop and peek; checks balanced parentheses; converts Roman numerals to integers
  throttles calls to at most one per second; walks a directory tree and lists every file
  computes a SHA-256 hash of a file; merges two dictionaries recursively`);

const RECIPIENTS = list("manager; colleague; landlord; teacher; client; neighbour; team; coach; doctor");
const TONES = list(
  "more formal; friendlier; more persuasive; more concise; less stiff; more professional; warmer",
);
const THINGS = list(`
  blog post titles; workshop activities; YouTube video ideas; beginner projects; conversation starters
  newsletter topics; names for a podcast; small experiments; questions for an interview; gift ideas`);

type S = {
  readonly t: Topic;
  readonly a: string;
  readonly b: string;
  readonly n: number;
  readonly aud: string;
  readonly lang: string;
  readonly tone: string;
  readonly thing: string;
  readonly who: string;
};

/** Requests about a topic that need no pasted text. */
const TOPIC_PHRASINGS: readonly ((s: S) => string)[] = [
  (s) => `Can you explain ${s.t.name} to me?`,
  (s) => `How does ${s.a} work in ${s.t.name}?`,
  (s) => `Explain ${s.a} in ${s.t.name} like I'm ${s.aud}.`,
  (s) => `What's the deal with ${s.a}? I keep hearing about it in the context of ${s.t.name}.`,
  (s) => `What are the main differences between ${s.a} and ${s.b} in ${s.t.name}?`,
  (s) => `Why is ${s.a} so important for ${s.t.name}?`,
  (s) => `What are the pros and cons of focusing on ${s.a} when getting into ${s.t.name}?`,
  (s) => `List ${s.n} interesting facts about ${s.t.name}.`,
  (s) => `Give me ${s.n} ${s.thing} related to ${s.t.name}.`,
  (s) => `Brainstorm ${s.n} names for a small business built around ${s.t.name}.`,
  (s) => `Write ${s.n} multiple-choice questions about ${s.t.name} for ${s.aud}.`,
  (s) => `Give me a step-by-step plan to get started with ${s.t.name}.`,
  (s) => `Define ${s.a} in one sentence, in the context of ${s.t.name}.`,
  (s) => `I'm new to ${s.t.name}. Where should I start, and what about ${s.a}?`,
  (s) => `What are common misconceptions about ${s.t.name}?`,
  (s) => `Is it true that ${s.a} doesn't really matter for ${s.t.name}?`,
  (s) => `Write a short poem about ${s.t.name}.`,
  (s) => `Write a ${s.n * 20}-word blog intro about ${s.t.name}.`,
  (s) => `Draft an email to my ${s.who} about ${s.t.name}.`,
  (s) => `Translate "I have been learning about ${s.t.name} for ${s.n} weeks" into ${s.lang}.`,
  (s) => `Summarise the history of ${s.t.name} in ${s.n} sentences.`,
  (s) => `Write a short story where ${s.a} plays a key role. The theme is ${s.t.name}.`,
  (s) => `Compare ${s.a} and ${s.b}. When would you choose one over the other in ${s.t.name}?`,
  (s) => `What questions should I ask an expert in ${s.t.name} about ${s.a}?`,
  (s) => `Create a ${s.n}-day learning plan for ${s.t.name}.`,
  (s) => `What's a good analogy for ${s.a}? I'm trying to teach ${s.t.name} to ${s.aud}.`,
  (s) => `Give me a checklist for ${s.t.name}, with a focus on ${s.b}.`,
  (s) => `What are the biggest mistakes people make with ${s.a} in ${s.t.name}?`,
];

/** Requests that work on a pasted text (summarise, rewrite, translate, classify, continue). */
const MATERIAL_PHRASINGS: readonly ((s: S, text: string) => string)[] = [
  (s, x) => `Summarise this in ${s.n} bullet points:\n\n${x}`,
  (_s, x) => `TL;DR please:\n${x}`,
  (_s, x) => `Can you give me a short summary of the following text?\n\n${x}`,
  (s, x) => `Translate the following into ${s.lang}:\n\n${x}`,
  (s, x) => `Rewrite this to sound ${s.tone}:\n\n${x}`,
  (_s, x) => `Make this shorter and clearer without losing the main points:\n\n${x}`,
  (_s, x) => `Proofread the following and fix any grammar mistakes:\n\n${x}`,
  (_s, x) => `Is the tone of this text positive, negative or neutral? Explain briefly.\n\n${x}`,
  (_s, x) => `Classify this text into one of: news, opinion, tutorial, marketing, other.\n\n"""\n${x}\n"""`,
  (_s, x) => `Continue this story for another paragraph:\n\n${x}`,
  (s, x) => `Here are my notes on ${s.t.name}. Turn them into a clear explanation for ${s.aud}.\n\n${x}`,
  (_s, x) => `${x}\n\nWhat are the three most important points in the text above?`,
  (_s, x) => `Extract the key claims from this text and say which ones need a source:\n\n${x}`,
  (s, x) => `Write ${s.n} quiz questions based on this passage:\n\n${x}`,
  (_s, x) => `Give this text a good title:\n\n${x}`,
];

/** Coding requests (topic-free). */
const CODE_PHRASINGS: readonly ((lang: string, job: string) => string)[] = [
  (l, j) => `Write a ${l} function that ${j}.`,
  (l, j) => `How do I write something in ${l} that ${j}?`,
  (l, j) => `Can you show me ${l} code that ${j}? Please add comments.`,
  (l, j) => `I need a ${l} snippet that ${j}. Keep it idiomatic.`,
  (l, j) => `In ${l}, what's the cleanest way to write a helper that ${j}?`,
  (l, j) => `Write unit tests in ${l} for a function that ${j}.`,
];

/** Very short messages, for shapes with a tiny prompt. */
const MICRO = list(`
  hi; hello; hey; thanks!; Tell me a joke.; What's up?; Hi there!; Good morning; Help; Continue.; Go on.
  Say something nice.; Any tips?; ok; Why?; Explain.; More please.; Another one.; Make it shorter.`);
const MICRO_TOPIC: readonly ((t: Topic) => string)[] = [
  (t) => `What is ${t.name}?`,
  (t) => `${capitalise(t.name)}?`,
  (t) => `Tell me about ${t.name}.`,
  (t) => `Define ${t.terms[0]}.`,
  (t) => `Explain ${t.terms[1]} briefly.`,
  (t) => `${capitalise(t.terms[2] ?? t.name)} - why?`,
];

/** Sizes of the parts, for the estimate of the space in prompt-space.ts. */
export const TASK_COUNTS = Object.freeze({
  openers: OPENERS.length + 1,
  closers: CLOSERS.length + 1,
  topicPhrasings: TOPIC_PHRASINGS.length,
  materialPhrasings: MATERIAL_PHRASINGS.length,
  codeRequests: CODE_PHRASINGS.length * PROGRAMMING_LANGUAGES.length * CODE_JOBS.length,
});

function slots(random: Random, t: Topic): S {
  const a = pick(random, t.terms);
  const others = t.terms.filter((x) => x !== a);
  return {
    t,
    a,
    b: pick(random, others.length > 0 ? others : t.terms),
    n: int(random, 3, 10),
    aud: pick(random, AUDIENCES),
    lang: pick(random, TARGET_LANGUAGES),
    tone: pick(random, TONES),
    thing: pick(random, THINGS),
    who: pick(random, RECIPIENTS),
  };
}

/** Lower-case start and no final full stop, as many people type. */
function casual(text: string): string {
  const first = text[0] ?? "";
  return first.toLowerCase() + text.slice(1).replace(/\.$/, "");
}

/** What a user request is built from. */
export interface RequestOptions {
  /** Bytes of pasted text wanted; 0 picks a request without one most of the time. */
  readonly materialBytes: number;
  /** A request that fits in a handful of tokens. */
  readonly tiny?: boolean;
  /** No opener or closing remark (a short prompt is wanted). */
  readonly plain?: boolean;
  /** Only requests about the topic itself (no coding task): a history's replies follow on from it. */
  readonly onTopic?: boolean;
}

/** One English user request about `topic`. */
export function englishRequest(random: Random, topic: Topic, opts: RequestOptions): string {
  if (opts.tiny === true) {
    return chance(random, 0.5) ? pick(random, MICRO) : pick(random, MICRO_TOPIC)(topic);
  }
  const s = slots(random, topic);
  let core: string;
  if (opts.materialBytes > 0 || chance(random, 0.1)) {
    const text = textOfBytes(random, topic, Math.max(200, opts.materialBytes));
    core = pick(random, MATERIAL_PHRASINGS)(s, text);
  } else if (opts.onTopic !== true && chance(random, 0.15)) {
    core = pick(random, CODE_PHRASINGS)(pick(random, PROGRAMMING_LANGUAGES), pick(random, CODE_JOBS));
  } else {
    core = pick(random, TOPIC_PHRASINGS)(s);
  }
  const opener = opts.plain !== true && chance(random, 0.4) ? pick(random, OPENERS) : "";
  const closer = opts.plain !== true && chance(random, 0.45) ? ` ${pick(random, CLOSERS)}` : "";
  const text = opener + core + closer;
  return chance(random, 0.12) ? casual(text) : text;
}
