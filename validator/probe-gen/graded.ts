import { PEOPLE } from "./prompt-sentences.js";
import { chance, int, list, pick, type Random, sample } from "./random.js";

/*
 * Prompts with exactly one right answer, phrased like ordinary requests:
 * arithmetic on random operands, counting a letter in a word, spelling a
 * word backwards, and reading one field out of a short generated message.
 * A miner that answers without the model it claims gets them wrong; the
 * grading forgives the words around an answer but not a wrong value.
 */

/** Kinds of graded prompt. */
export type GradedKind = "arithmetic" | "letters" | "reverse" | "extract";

/** A prompt with its one right answer. */
export interface GradedPrompt {
  readonly kind: GradedKind;
  /** The user's request. */
  readonly text: string;
  /** The right answer, as the model should give it. */
  readonly expected: string;
  /** True when `answer` gives the right value (surrounding words and punctuation are fine). */
  grade(answer: string): boolean;
}

const BRIEF = list(`
  Just the number, please.; Reply with only the number.; Only the result please.; Number only.
  Just give me the answer.; No explanation needed.`);

const NUMBER_WORDS = list(
  "zero; one; two; three; four; five; six; seven; eight; nine; ten; eleven; twelve; thirteen; fourteen; fifteen",
);

/** Numbers written in `text`, in order: digits with thousands separators, decimals, and small number words. */
export function numbersIn(text: string): number[] {
  const out: number[] = [];
  const re = /(-?\d{1,3}(?:[,\u202f]\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?)|\b([a-z]+)\b/gi;
  for (const m of text.matchAll(re)) {
    if (m[1] !== undefined) {
      out.push(Number(m[1].replace(/[,\u202f]/g, "")));
    } else {
      const i = NUMBER_WORDS.indexOf((m[2] ?? "").toLowerCase());
      if (i >= 0) out.push(i);
    }
  }
  return out;
}

/** The last number of `answer` that is not one of the question's own numbers equals `expected`. */
function lastNumberIs(answer: string, expected: number, operands: readonly number[]): boolean {
  const found = numbersIn(answer).filter((n) => !operands.includes(n));
  return found.length > 0 && found[found.length - 1] === expected;
}

function arithmetic(random: Random): GradedPrompt {
  const op = int(random, 0, 3);
  let a: number;
  let b: number;
  let result: number;
  let ask: string;
  if (op === 0) {
    a = int(random, 120, 99_999);
    b = int(random, 120, 99_999);
    result = a + b;
    ask = pick(random, [
      `What's ${a} + ${b}?`,
      `Quick one: what is ${a} plus ${b}?`,
      `Add ${a} and ${b} for me.`,
    ]);
  } else if (op === 1) {
    a = int(random, 1_000, 99_999);
    b = int(random, 100, a - 1);
    // The result must not be one of the operands: those are ignored when grading.
    if (a - b === b) b--;
    result = a - b;
    ask = pick(random, [
      `What is ${a} minus ${b}?`,
      `Can you calculate ${a} - ${b}?`,
      `Subtract ${b} from ${a}.`,
    ]);
  } else if (op === 2) {
    a = int(random, 13, 999);
    b = int(random, 3, 99);
    result = a * b;
    ask = pick(random, [`What's ${a} times ${b}?`, `Multiply ${a} by ${b}.`, `How much is ${a} x ${b}?`]);
  } else {
    b = int(random, 3, 49);
    let q = int(random, 12, 999);
    if (q === b) q++;
    a = b * q;
    result = q;
    ask = pick(random, [
      `What's ${a} divided by ${b}?`,
      `If I split ${a} into ${b} equal parts, how big is each part?`,
    ]);
  }
  const text = chance(random, 0.85) ? `${ask} ${pick(random, BRIEF)}` : ask;
  return {
    kind: "arithmetic",
    text,
    expected: String(result),
    grade: (answer) => lastNumberIs(answer, result, [a, b]),
  };
}

const WORDS = list(`
  strawberry; banana; bookkeeper; mississippi; committee; occurrence; necessary; balloon; cinnamon; parallel
  accommodate; embarrass; millennium; possession; coffee; assessment; tomorrow; sunflower; elephant; pepper
  raspberry; butterfly; grammar; successful; keyboard; vacuum; different; marshmallow; bottleneck; giraffe
  garden; planet; lemon; window; market; silver; orange; rocket; basket; candle; pencil; mountain; jacket`);

function letters(random: Random): GradedPrompt {
  const word = pick(random, WORDS);
  const letter = pick(random, [...new Set(word)]);
  const count = [...word].filter((c) => c === letter).length;
  const ask = pick(random, [
    `How many times does the letter "${letter}" appear in "${word}"?`,
    `Count the ${letter}'s in the word ${word}.`,
    `How many "${letter}" are there in ${word}?`,
  ]);
  return {
    kind: "letters",
    // Always asked briefly: a spelled-out count ("positions 3, 8 and 9") would end on another number.
    text: `${ask} ${pick(random, BRIEF)}`,
    expected: String(count),
    grade: (answer) => lastNumberIs(answer, count, []),
  };
}

/** Letters only, lower case; spelled-out forms ("n-e-d-r-a-g", "N E D R A G") joined up. */
function spelledWords(answer: string): string[] {
  const lower = answer.toLowerCase();
  const joined = lower.replace(/\b([a-z])(?:[\s\-.,]+(?=[a-z]\b))/g, "$1");
  return [...(lower.match(/[a-z]+/g) ?? []), ...(joined.match(/[a-z]+/g) ?? [])];
}

function reverse(random: Random): GradedPrompt {
  const candidates = WORDS.filter((w) => [...w].reverse().join("") !== w);
  const word = pick(random, candidates);
  const reversed = [...word].reverse().join("");
  const text = pick(random, [
    `Spell "${word}" backwards.`,
    `Reverse the letters of the word "${word}".`,
    `What do you get if you write ${word} backwards?`,
    `Write the word ${word} in reverse order, letter by letter.`,
  ]);
  return {
    kind: "reverse",
    text: chance(random, 0.6)
      ? `${text} ${pick(random, list("Just the word.; Only the answer.; No explanation."))}`
      : text,
    expected: reversed,
    grade: (answer) => spelledWords(answer).includes(reversed),
  };
}

function code(random: Random, letters: number, digits: number, sep: string): string {
  const L = "ABCDEFGHJKLMNPQRSTUVWXYZ";
  let out = "";
  for (let i = 0; i < letters; i++) out += L[int(random, 0, L.length - 1)];
  out += sep;
  for (let i = 0; i < digits; i++) out += String(int(random, i === 0 ? 1 : 0, 9));
  return out;
}

/** Upper case, hyphens inside codes dropped, other punctuation made spaces, padded: codes become whole tokens. */
function normaliseCodes(text: string): string {
  const joined = text.toUpperCase().replace(/(?<=[A-Z0-9])-(?=[A-Z0-9])/g, "");
  return ` ${joined.replace(/[^A-Z0-9]+/g, " ")} `;
}

function extract(random: Random): GradedPrompt {
  const name = pick(random, PEOPLE);
  const order = code(random, 2, 5, "-");
  const tracking = code(random, 3, 8, "");
  const room = `${pick(random, ["A", "B", "C", "D"])}${int(random, 101, 499)}`;
  const flight = code(random, 2, 4, "");
  const booking = code(random, 4, 2, "");
  const forms = [
    {
      msg: `Hi ${name}, thanks for your order! Your order number is ${order}. It ships in ${int(random, 2, 5)} days with tracking code ${tracking}.`,
      fields: [
        { ask: "What's the order number in this message?", value: order },
        { ask: "What's the tracking code?", value: tracking },
      ],
    },
    {
      msg: `Reminder: your interview with ${name} is on ${pick(random, list("Monday; Tuesday; Wednesday; Thursday; Friday"))} at ${int(random, 9, 16)}:00 in room ${room}. Your visitor badge number is ${booking}.`,
      fields: [
        { ask: "Which room is the interview in?", value: room },
        { ask: "What's my visitor badge number?", value: booking },
      ],
    },
    {
      msg: `Booking confirmed for ${name}. Flight ${flight} departs at ${int(random, 6, 22)}:${pick(random, ["05", "15", "30", "45"])}. Booking reference: ${booking}. Seat ${int(random, 3, 40)}${pick(random, ["A", "C", "D", "F"])}.`,
      fields: [
        { ask: "What's the flight number?", value: flight },
        { ask: "What's the booking reference?", value: booking },
      ],
    },
  ];
  const form = pick(random, forms);
  const [field] = sample(random, form.fields, 1) as [{ ask: string; value: string }];
  const others = form.fields.filter((f) => f !== field).map((f) => f.value);
  const intro = pick(random, ["I got this message:", "Here's an email I received:", "From my inbox:", ""]);
  const text = `${intro}${intro === "" ? "" : "\n\n"}"${form.msg}"\n\n${field.ask} ${pick(random, list("Just the code.; Only the value please.; Reply with just that."))}`;
  const want = ` ${field.value.replace(/-/g, "")} `;
  return {
    kind: "extract",
    text,
    expected: field.value,
    grade: (answer) => {
      const a = normaliseCodes(answer);
      return a.includes(want) && others.every((o) => !a.includes(` ${o.replace(/-/g, "")} `));
    },
  };
}

const KINDS: readonly ((random: Random) => GradedPrompt)[] = [arithmetic, letters, reverse, extract];

/** A graded prompt of a random kind (or of `kind`). */
export function drawGradedPrompt(random: Random, kind?: GradedKind): GradedPrompt {
  if (kind !== undefined) {
    return { arithmetic, letters, reverse, extract }[kind](random);
  }
  return pick(random, KINDS)(random);
}
