import { expect } from "chai";
import { drawGradedPrompt, type GradedPrompt, numbersIn } from "../../validator/probe-gen/graded.js";
import { seededRandom } from "../support/api-random.js";

/** Independent oracle for an arithmetic question: the two operands and the operation named. */
function arithmeticAnswer(text: string): number {
  const [a, b] = (text.match(/\d+/g) ?? []).map(Number) as [number, number];
  if (/\+|plus|Add /.test(text)) return a + b;
  if (/minus| - /.test(text)) return a - b;
  if (/Subtract/.test(text)) return b - a;
  if (/times|Multiply| x /.test(text)) return a * b;
  if (/divided|split/.test(text)) return a / b;
  throw new Error(`no operation in ${text}`);
}

function many(kind: GradedPrompt["kind"], n = 300): GradedPrompt[] {
  const random = seededRandom(kind.length * 97);
  return Array.from({ length: n }, () => drawGradedPrompt(random, kind));
}

describe("probe-gen: graded prompts", () => {
  it("reads numbers with separators, decimals and small number words", () => {
    expect(numbersIn("It's 9,716 (or 9716.0), three, and -4; twelve apples")).to.deep.equal([
      9716, 9716, 3, -4, 12,
    ]);
  });

  it("arithmetic: the expected value is right, and grading is strict on it but not on the words", () => {
    for (const p of many("arithmetic")) {
      const want = arithmeticAnswer(p.text);
      expect(p.expected, p.text).to.equal(String(want));
      expect(p.grade(p.expected)).to.equal(true);
      expect(p.grade(`The answer is **${want.toLocaleString("en-US")}**.`), p.text).to.equal(true);
      const [a, b] = (p.text.match(/\d+/g) ?? []) as [string, string];
      expect(p.grade(`${a} and ${b} give ${want}. Let me know if you need more!`)).to.equal(true);
      expect(p.grade(`${want} (from ${a} and ${b})`)).to.equal(true);
      expect(p.grade(String(want + 1))).to.equal(false);
      expect(p.grade(`${want}? No wait, it's ${want - 1}.`)).to.equal(false);
      expect(p.grade(`${a} ${b}`)).to.equal(false);
      expect(p.grade("I'm not sure.")).to.equal(false);
    }
  });

  it("letter counts: the expected count is right; the last number given decides", () => {
    for (const p of many("letters")) {
      const letter = (p.text.match(/letter "(.)"|the (.)'s|many "(.)"/) ?? [])
        .slice(1)
        .find((x) => x !== undefined);
      const word = (p.text.match(/in "([a-z]+)"|word ([a-z]+)\.|in ([a-z]+)\?/) ?? [])
        .slice(1)
        .find((x) => x !== undefined);
      expect(letter, p.text).to.be.a("string");
      const count = [...(word as string)].filter((c) => c === letter).length;
      expect(p.expected, p.text).to.equal(String(count));
      expect(p.grade(`There are ${count} "${letter}"s in "${word}".`)).to.equal(true);
      expect(p.grade(`${count}`)).to.equal(true);
      expect(p.grade(`${count + 1}`)).to.equal(false);
      expect(p.grade("none")).to.equal(false);
      const words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];
      expect(p.grade(`It appears ${words[count]} times.`), p.text).to.equal(true);
    }
  });

  it("reversing a word: accepts the word spelt backwards in any wording, nothing else", () => {
    for (const p of many("reverse")) {
      const word = (p.text.match(/"([a-z]+)"|write ([a-z]+) backwards|word ([a-z]+) in/) ?? [])
        .slice(1)
        .find((x) => x !== undefined) as string;
      const back = [...word].reverse().join("");
      expect(p.expected, p.text).to.equal(back);
      expect(back).to.not.equal(word);
      expect(p.grade(back)).to.equal(true);
      expect(p.grade(`"${word}" backwards is "${back.toUpperCase()}".`)).to.equal(true);
      expect(p.grade(`${[...back].join("-")}`)).to.equal(true);
      expect(p.grade(`${[...back].join(" ").toUpperCase()}`)).to.equal(true);
      expect(p.grade(word)).to.equal(false);
      expect(p.grade(back.slice(1))).to.equal(false);
      // Two different neighbouring letters swapped: a near miss is still wrong.
      const i = [...back].findIndex((c, k) => k + 1 < back.length && c !== back[k + 1]);
      expect(p.grade(`${back.slice(0, i)}${back[i + 1]}${back[i]}${back.slice(i + 2)}`)).to.equal(false);
    }
  });

  it("extraction: the expected value is in the message; only that value passes", () => {
    let distractors = 0;
    for (const p of many("extract")) {
      expect(p.text).to.include(p.expected);
      expect(p.grade(p.expected)).to.equal(true);
      expect(p.grade(`Sure - it's ${p.expected}.`)).to.equal(true);
      expect(p.grade(`**${p.expected.toLowerCase()}**`)).to.equal(true);
      // Every other code in the message is a wrong answer, alone or next to the right one.
      const codes = (p.text.match(/\b[A-Z]{2,4}-?\d{2,8}\b|\b[A-D]\d{3}\b/g) ?? []).filter(
        (c) => c !== p.expected,
      );
      distractors += codes.length;
      for (const other of codes) {
        expect(p.grade(other), `${other} for ${p.expected}`).to.equal(false);
        expect(p.grade(`${p.expected} or ${other}`)).to.equal(false);
      }
      expect(p.grade(`${p.expected}9`)).to.equal(false);
    }
    expect(distractors).to.be.at.least(250);
  });

  it("draws every kind, deterministically for a seed", () => {
    const kinds = new Set<string>();
    const random = seededRandom(5);
    for (let i = 0; i < 200; i++) kinds.add(drawGradedPrompt(random).kind);
    expect([...kinds].sort()).to.deep.equal(["arithmetic", "extract", "letters", "reverse"]);
    const a = drawGradedPrompt(seededRandom(9));
    const b = drawGradedPrompt(seededRandom(9));
    expect([a.kind, a.text, a.expected]).to.deep.equal([b.kind, b.text, b.expected]);
  });
});
