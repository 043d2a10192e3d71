/**
 * Fresh, ordinary-looking micro-prompts for probes. A probe must be
 * indistinguishable from user traffic, so there is no fixed text to match:
 * each prompt is assembled from a template, a few words and a number, all
 * drawn from the injected random source.
 */

const TEMPLATES: readonly ((w: readonly string[], n: number) => string)[] = [
  (w) => `Give me one word that rhymes with "${w[0]}".`,
  (w) => `What is a synonym for ${w[0]}? Answer briefly.`,
  (_w, n) => `What is ${n} plus ${n % 17}? Reply with the number only.`,
  (w) => `Name a color that goes well with ${w[0]}.`,
  (w) => `Translate "${w[0]}" into French.`,
  (w) => `Is a ${w[0]} bigger than a ${w[1]}? Yes or no.`,
  (w) => `Write a two-word title about ${w[0]} and ${w[1]}.`,
  (_w, n) => `Count backwards from ${n % 50} in one line.`,
  (w) => `Complete the phrase: the ${w[0]} and the ${w[1]}...`,
  (w) => `Spell "${w[0]}" backwards.`,
  (_w, n) => `Is ${n} an even number? Answer in one word.`,
  (w) => `Describe a ${w[0]} in three words.`,
];

const WORDS: readonly string[] = [
  "river",
  "lantern",
  "apple",
  "mountain",
  "violin",
  "garden",
  "harbor",
  "pencil",
  "falcon",
  "winter",
  "copper",
  "meadow",
  "rocket",
  "cactus",
  "ocean",
  "thunder",
  "marble",
  "orchard",
  "glacier",
  "candle",
  "compass",
  "velvet",
  "canyon",
  "pepper",
  "island",
  "bridge",
  "maple",
  "saddle",
  "comet",
  "basket",
  "tiger",
  "window",
  "forest",
  "kettle",
  "planet",
  "ribbon",
  "desert",
  "anchor",
  "feather",
  "castle",
];

function pickFrom<T>(xs: readonly T[], random: () => number): T {
  return xs[Math.min(xs.length - 1, Math.floor(random() * xs.length))] as T;
}

/** A fresh random prompt; `random` returns values in [0, 1). */
export function probePrompt(random: () => number): string {
  const words = [pickFrom(WORDS, random), pickFrom(WORDS, random)];
  const n = 2 + Math.floor(random() * 997);
  return pickFrom(TEMPLATES, random)(words, n);
}
