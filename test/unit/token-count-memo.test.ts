import { expect } from "chai";
import { TokenCountMemo } from "../../common/tokens/count-memo.js";
import { Encodings } from "../../common/tokens/encodings.js";

/** A real encoding's counter, wrapped to record which texts it was asked to count. */
function recorded(count: (text: string) => number) {
  const asked: string[] = [];
  const counter = (text: string) => {
    asked.push(text);
    return count(text);
  };
  return { counter, asked };
}

describe("TokenCountMemo", () => {
  let o200k: (text: string) => number;
  let cl100k: (text: string) => number;
  before(async () => {
    const encodings = new Encodings();
    o200k = await encodings.load("o200k_base");
    cl100k = await encodings.load("cl100k_base");
  });

  const long = (seed: string, chars: number) =>
    `${seed} `.repeat(Math.ceil(chars / (seed.length + 1))).slice(0, chars);

  it("answers what the counter answers, and counts a long text once per partition", () => {
    const { counter, asked } = recorded(o200k);
    const memo = new TokenCountMemo({ minChars: 100 });
    const alice = memo.counter(counter, "key-alice");
    const text = long("the history of a conversation, turn after turn", 5000);
    const expected = o200k(text);
    expect(alice(text)).to.equal(expected);
    expect(alice(text)).to.equal(expected);
    expect(alice(text)).to.equal(expected);
    expect(asked).to.have.length(1);
    // Another counter object for the same partition shares the entries.
    expect(memo.counter(counter, "key-alice")(text)).to.equal(expected);
    expect(asked).to.have.length(1);
    expect(memo.stats()).to.include({ entries: 1, hits: 3, misses: 1 });
  });

  it("never answers one partition from another's entry, even for a prefix-like partition name", () => {
    const { counter, asked } = recorded(o200k);
    const memo = new TokenCountMemo({ minChars: 100 });
    const text = long("a private document someone pasted", 2000);
    memo.counter(counter, "a")(text);
    memo.counter(counter, "b")(text);
    // A key naming the partition by a separator alone would make ("a:b", text) and ("a", "b:" + text)
    // the same entry; the partition's length in the key keeps them apart.
    expect(memo.counter(counter, "a:b")(text)).to.equal(o200k(text));
    expect(memo.counter(counter, "a")(`b:${text}`)).to.equal(o200k(`b:${text}`));
    expect(asked).to.have.length(4);
    expect(memo.stats().hits).to.equal(0);
  });

  it("keeps each encoding's counts apart: the same text under two encodings is counted by each", () => {
    const memo = new TokenCountMemo({ minChars: 100 });
    const text = long("Übergrößenträger naïve café 東京 emoji 🙂 tokens", 3000);
    const a = memo.counter(o200k, "k")(text);
    const b = memo.counter(cl100k, "k")(text);
    expect(a).to.equal(o200k(text));
    expect(b).to.equal(cl100k(text));
    expect(a).to.not.equal(b);
    expect(memo.counter(o200k, "k")(text)).to.equal(a);
    expect(memo.counter(cl100k, "k")(text)).to.equal(b);
  });

  it("counts short texts directly, without remembering them", () => {
    const { counter, asked } = recorded(o200k);
    const memo = new TokenCountMemo({ minChars: 100 });
    const count = memo.counter(counter, "k");
    count("hello there");
    count("hello there");
    expect(asked).to.deep.equal(["hello there", "hello there"]);
    expect(memo.stats().entries).to.equal(0);
  });

  it("stays within its budget, dropping the least recently used first", () => {
    const { counter, asked } = recorded(o200k);
    const memo = new TokenCountMemo({ minChars: 10, budgetChars: 8000 });
    const count = memo.counter(counter, "k");
    const texts = ["one", "two", "three", "four", "five"].map((w) => long(w, 900));
    for (const t of texts.slice(0, 4)) count(t);
    // Use the first again, so the second is now the oldest.
    count(texts[0] as string);
    expect(asked).to.have.length(4);
    // Within 8,000 chars (keys include their partition prefix) at most eight 900-char texts fit;
    // fill past it and the oldest go, the recently used stay.
    for (const w of ["six", "seven", "eight", "nine", "ten"]) count(long(w, 900));
    const { chars, entries } = memo.stats();
    expect(chars).to.be.at.most(8000);
    expect(entries).to.be.below(9);
    asked.length = 0;
    count(texts[0] as string);
    expect(asked).to.have.length(0);
    count(texts[1] as string);
    expect(asked).to.have.length(1);
  });

  it("never remembers a text over an eighth of the budget, so one request cannot flush the rest", () => {
    const { counter, asked } = recorded(o200k);
    const memo = new TokenCountMemo({ minChars: 10, budgetChars: 8000 });
    const count = memo.counter(counter, "k");
    const kept = long("kept", 900);
    count(kept);
    const huge = long("huge", 1001);
    count(huge);
    count(huge);
    expect(asked.filter((t) => t === huge)).to.have.length(2);
    asked.length = 0;
    count(kept);
    expect(asked).to.have.length(0);
  });
});
