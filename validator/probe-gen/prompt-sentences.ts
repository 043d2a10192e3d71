import type { Topic } from "./prompt-topics.js";
import { capitalise, int, list, pick, type Random } from "./random.js";

/*
 * Composable English sentences about a topic: the material a user pastes
 * to be summarised or rewritten, the background a long question carries,
 * and the body of earlier assistant turns. Built sentence by sentence, so a
 * prompt can be grown towards the size its sampled shape asks for.
 */

/** First names, varied in origin. */
export const PEOPLE = list(`
  Maria; James; Aisha; Chen; Lukas; Priya; Tomás; Emma; Kwame; Yuki; Olga; Daniel
  Fatima; Noah; Sofia; Arjun; Lena; Mateo; Hannah; Omar; Ines; Ravi; Grace; Felix`);

/** Places a story or an anecdote can be set in. */
export const PLACES = list(`
  Lisbon; a small town in Ohio; Nairobi; Osaka; the outskirts of Berlin; Melbourne; Toronto
  a village in the Alps; Buenos Aires; Manchester; Seoul; a fishing town in Norway; Austin
  Marseille; Cape Town; Kraków; Vancouver; Hanoi; Dublin; a suburb of Chicago`);

const ADJECTIVES = list(
  "surprising; important; overlooked; practical; controversial; simple; subtle; costly; useful; common; rare; tricky",
);

type Slots = {
  readonly t: Topic;
  readonly a: string;
  readonly b: string;
  readonly n: number;
  readonly year: number;
  readonly who: string;
  readonly where: string;
  readonly adj: string;
};

const TEMPLATES: readonly ((s: Slots) => string)[] = [
  (s) => `Most people underestimate how much ${s.a} matters when it comes to ${s.t.name}.`,
  (s) => `In ${s.year}, a small team in ${s.where} started experimenting with ${s.a}.`,
  (s) => `The ${s.adj} part is that ${s.a} and ${s.b} are closely linked.`,
  (s) => `According to one survey, about ${s.n} percent of beginners struggle with ${s.a} at first.`,
  (s) => `${s.who} once said that understanding ${s.a} changed the way they thought about ${s.t.name}.`,
  (s) => `There is no single right answer, but ${s.a} is usually a good place to start.`,
  (s) => `Experts in ${s.t.field} often disagree about how ${s.a} should be handled.`,
  (s) => `A common mistake is to focus on ${s.b} before getting ${s.a} right.`,
  (s) => `Over the last ${(s.n % 30) + 2} years, ${s.t.name} has changed a lot.`,
  (s) => `If you only remember one thing, remember that ${s.a} takes time to get right.`,
  (s) => `For example, ${s.who} from ${s.where} spent ${(s.n % 11) + 2} months learning about ${s.b}.`,
  (s) => `Costs vary widely, and ${s.a} can easily double the budget.`,
  (s) => `Some guides treat ${s.a} as optional, which is a ${s.adj} mistake.`,
  (s) => `The history of ${s.t.name} goes back further than most people think.`,
  (s) => `It helps to compare ${s.a} with ${s.b}, since they solve related problems.`,
  (s) => `${capitalise(s.a)} was barely discussed before ${s.year}, but now it comes up constantly.`,
  (s) => `Nobody expected ${s.b} to become such a big topic in ${s.t.field}.`,
  (s) => `The numbers are clear: roughly ${s.n} out of a hundred projects run into trouble with ${s.a}.`,
  (s) => `When ${s.who} tried it for the first time, ${s.a} turned out to be the hardest part.`,
  (s) => `A good rule of thumb is to review ${s.b} at least once every ${(s.n % 6) + 2} weeks.`,
  (s) => `People in ${s.where} tend to approach ${s.t.name} differently.`,
  (s) => `Not everything written about ${s.a} online is accurate, so check your sources.`,
  (s) => `The basic idea behind ${s.a} is easier to grasp than it sounds.`,
  (s) => `Small changes to ${s.b} can have ${s.adj} effects later on.`,
  (s) => `Many beginners ask whether ${s.a} is really necessary.`,
  (s) => `The short version: ${s.a} affects almost everything else in ${s.t.name}.`,
  (s) => `Last year's report from ${s.where} mentioned ${s.b} ${(s.n % 9) + 2} times.`,
  (s) => `It is worth noting that ${s.b} depends heavily on context.`,
  (s) => `Another ${s.adj} point is how ${s.a} interacts with ${s.b}.`,
  (s) => `${s.who} and a friend tested this over a weekend and were surprised by the results.`,
  (s) => `Good documentation on ${s.a} is hard to find, which slows everyone down.`,
  (s) => `Critics argue that the focus on ${s.a} distracts from ${s.b}.`,
];

/** One sentence about `topic`. */
export function sentence(random: Random, topic: Topic): string {
  const a = pick(random, topic.terms);
  let b = pick(random, topic.terms);
  if (b === a) b = topic.terms[(topic.terms.indexOf(a) + 1) % topic.terms.length] as string;
  const slots: Slots = {
    t: topic,
    a,
    b,
    n: int(random, 5, 95),
    year: int(random, 1985, 2024),
    who: pick(random, PEOPLE),
    where: pick(random, PLACES),
    adj: pick(random, ADJECTIVES),
  };
  return pick(random, TEMPLATES)(slots);
}

/** A paragraph of `count` sentences about `topic`. */
export function paragraph(random: Random, topic: Topic, count: number): string {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(sentence(random, topic));
  return out.join(" ");
}

/**
 * Text about `topic` of about `bytes` UTF-8 bytes (at least one sentence),
 * in paragraphs of three to six sentences.
 */
export function textOfBytes(random: Random, topic: Topic, bytes: number): string {
  const paragraphs: string[] = [];
  let size = 0;
  let current: string[] = [];
  let cap = int(random, 3, 6);
  do {
    const s = sentence(random, topic);
    current.push(s);
    size += Buffer.byteLength(s, "utf8") + 1;
    if (current.length >= cap) {
      paragraphs.push(current.join(" "));
      current = [];
      cap = int(random, 3, 6);
      size += 1;
    }
  } while (size < bytes);
  if (current.length > 0) paragraphs.push(current.join(" "));
  return paragraphs.join("\n\n");
}
