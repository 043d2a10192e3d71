// The demo model's arithmetic on a toy corpus small enough to work out by
// hand: the interpolation chain, smoothing over the whole vocabulary, the
// stop hazard, the repetition penalty, topic weights, and the distribution's
// ranking and sampling.
import { expect } from "chai";
import { REPEAT_PENALTY } from "../../common/demo-model/context-state.js";
import { nthUnseenId, TokenDistribution, type Vocabulary } from "../../common/demo-model/distribution.js";
import { buildDemoModel, type DemoModel } from "../../common/demo-model/model.js";
import { ADD_K, BACKOFF_SCALE, STOP_HAZARD } from "../../common/demo-model/ngram-mixture.js";
import { requestSeed, seededRandom } from "../../common/demo-model/sampling.js";
import { TOY_EOS, toy, toyTokenizer } from "../support/demo-toy.js";

const β = BACKOFF_SCALE;
/** One Witten-Bell level: `n` of `total` followers, `types` distinct, over the level below. */
const level = (n: number, total: number, types: number, below: number) =>
  (n + β * types * below) / (total + β * types);

function sumOverVocabulary(model: DemoModel, context: number[]): number {
  const d = model.distribution(context);
  let s = 0;
  for (let id = 0; id < toyTokenizer.regularTokens; id++) s += d.prob(id);
  return s + d.prob(TOY_EOS);
}

describe("demo model arithmetic (toy corpus)", () => {
  // One topic, one document: "a b c" then end-of-text. N = 4 tokens, V = 10 + 1 ids.
  const one = buildDemoModel(toyTokenizer, [{ name: "t", text: "a b c" }]);
  const N = 4;
  const V = 11;
  const p0 = (count: number) => (count + ADD_K) / (N + ADD_K * V);

  it("interpolates trigram → bigram → corpus levels → add-k exactly as written", () => {
    // Background: unigram (4 tokens, 4 types), bigram "b"→{c}, trigram "a b"→{c}; the topic's own
    // bigram and trigram are the same counts again on top.
    const uni = level(1, 4, 4, p0(1));
    const bg = level(1, 1, 1, level(1, 1, 1, uni));
    const expected = level(1, 1, 1, level(1, 1, 1, bg));
    expect(one.distribution(toy("a b")).prob(toy("c")[0] as number)).to.be.closeTo(expected, 1e-15);
    // A token the corpus never used ("f") gets only what falls through every level.
    const unseen = level(0, 1, 1, level(0, 1, 1, level(0, 1, 1, level(0, 1, 1, level(0, 4, 4, p0(0))))));
    expect(one.distribution(toy("a b")).prob(toy("f")[0] as number)).to.be.closeTo(unseen, 1e-18);
    expect(unseen).to.be.greaterThan(0);
  });

  it("is a normalised distribution over every id of the vocabulary, and refuses ids outside it", () => {
    for (const ctx of [[], toy("a"), toy("a b"), toy("c a"), toy("f f"), [TOY_EOS]]) {
      expect(sumOverVocabulary(one, ctx), JSON.stringify(ctx)).to.be.closeTo(1, 1e-12);
      expect(one.distribution(ctx).total()).to.be.closeTo(1, 1e-12);
    }
    expect(() => one.distribution(toy("a")).prob(10)).to.throw(RangeError); // the hole
    expect(() => one.distribution([12])).to.throw(RangeError);
    expect(() => one.score([], [-1], 0)).to.throw(RangeError);
  });

  it("adds the stop hazard to end-of-text after a sentence end, keeping the sum at 1", () => {
    const corpus = [{ name: "t", text: "a . b . c" }];
    const m = buildDemoModel(toyTokenizer, corpus);
    // The same counts where "." is spelt ";": no sentence ends, no hazard.
    const plain = buildDemoModel(
      { ...toyTokenizer, tokenText: (id) => (id === toy(".")[0] ? " ;" : toyTokenizer.tokenText(id)) },
      corpus,
    );
    const d = m.distribution(toy("a ."));
    const base = plain.distribution(toy("a ."));
    expect(d.prob(TOY_EOS)).to.be.closeTo(STOP_HAZARD + (1 - STOP_HAZARD) * base.prob(TOY_EOS), 1e-15);
    for (const id of toy("a b c d f"))
      expect(d.prob(id)).to.be.closeTo((1 - STOP_HAZARD) * base.prob(id), 1e-15);
    expect(sumOverVocabulary(m, toy("a ."))).to.be.closeTo(1, 1e-12);
    // Not after other tokens.
    expect(m.distribution(toy("a b")).prob(TOY_EOS)).to.equal(plain.distribution(toy("a b")).prob(TOY_EOS));
  });

  it("down-weights a token that would repeat a trigram of the context, then renormalises", () => {
    const c = toy("c")[0] as number;
    const fresh = one.distribution(toy("a b")).prob(c);
    const again = one.distribution(toy("a b c a b")).prob(c);
    expect(again).to.be.closeTo((REPEAT_PENALTY * fresh) / (1 - (1 - REPEAT_PENALTY) * fresh), 1e-12);
    expect(sumOverVocabulary(one, toy("a b c a b"))).to.be.closeTo(1, 1e-12);
    // The cheap one-token path (score without alternatives) agrees with the full distribution.
    const [scored] = one.score(toy("a b c a b"), [c], 0);
    expect(scored?.logprob).to.be.closeTo(Math.log(again), 1e-12);
  });

  it("weights topics by the content words read: the answer follows the topic asked about", () => {
    // Each topic: a page of its content words (enough to outweigh the smoothing), then "a b" and one follower.
    const m = buildDemoModel(toyTokenizer, [
      { name: "kitchen", text: `${"bread dough ".repeat(100)}\n\na b c` },
      { name: "sea", text: `${"tide wave ".repeat(100)}\n\na b d` },
    ]);
    const c = toy("c")[0] as number;
    const d = toy("d")[0] as number;
    // With no content word the two topics weigh the same.
    const neutral = m.distribution(toy("a b"));
    expect(neutral.prob(c)).to.be.closeTo(neutral.prob(d), 1e-12);
    const kitchen = m.distribution(toy("dough a b"));
    const sea = m.distribution(toy("wave a b"));
    expect(kitchen.prob(c)).to.be.greaterThan(2 * kitchen.prob(d));
    expect(sea.prob(d)).to.be.greaterThan(2 * sea.prob(c));
    expect(
      m.generate({ promptTokens: toy("bread a b"), maxTokens: 1, temperature: 0 }).tokens[0]?.id,
    ).to.equal(c);
    expect(
      m.generate({ promptTokens: toy("tide a b"), maxTokens: 1, temperature: 0 }).tokens[0]?.id,
    ).to.equal(d);
  });
});

describe("TokenDistribution", () => {
  const vocab: Vocabulary = {
    known: Int32Array.from([2, 5, 7, 99]),
    indexOf: new Map([
      [2, 0],
      [5, 1],
      [7, 2],
      [99, 3],
    ]),
    regularTokens: 10,
    eosId: 99,
  };
  // Unseen: 0, 1, 3, 4, 6, 8, 9 (7 ids at 0.01 each).
  const dist = new TokenDistribution(vocab, Float64Array.from([0.3, 0.3, 0.13, 0.2]), 0.01);

  it("counts the ids it never saw and finds the j-th of them", () => {
    expect(dist.unseenCount).to.equal(7);
    expect([0, 1, 2, 3, 4, 5, 6].map((j) => nthUnseenId(vocab, j))).to.deep.equal([0, 1, 3, 4, 6, 8, 9]);
    expect(dist.total()).to.be.closeTo(1, 1e-12);
    expect(dist.prob(4)).to.equal(0.01);
  });

  it("ranks most likely first, equal probabilities by ascending id, and breaks the greedy tie the same way", () => {
    expect(dist.top(3).map((t) => t.id)).to.deep.equal([2, 5, 99]);
    expect(dist.top(3).map((t) => t.logprob)).to.deep.equal([Math.log(0.3), Math.log(0.3), Math.log(0.2)]);
    expect(dist.argmax()).to.equal(2);
    expect(dist.sample(0, () => 0.999)).to.equal(2);
    // Asked for more than it knows, it goes on with unseen ids in ascending order.
    expect(dist.top(6).map((t) => t.id)).to.deep.equal([2, 5, 99, 7, 0, 1]);
    expect(dist.top(0)).to.deep.equal([]);
  });

  it("samples in proportion to p^(1/T) with a seeded generator", () => {
    const count = (temperature: number, seed: number) => {
      const random = seededRandom(seed);
      const seen = new Map<number, number>();
      for (let i = 0; i < 20_000; i++) {
        const id = dist.sample(temperature, random);
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
      return seen;
    };
    const t1 = count(1, 7);
    expect((t1.get(2) ?? 0) / 20_000).to.be.closeTo(0.3, 0.015);
    expect((t1.get(99) ?? 0) / 20_000).to.be.closeTo(0.2, 0.015);
    let unseen = 0;
    for (const id of [0, 1, 3, 4, 6, 8, 9]) unseen += t1.get(id) ?? 0;
    expect(unseen / 20_000).to.be.closeTo(0.07, 0.01);
    // A low temperature all but removes the tail; the same seed draws the same sequence.
    const cold = count(0.2, 7);
    expect(((cold.get(2) ?? 0) + (cold.get(5) ?? 0)) / 20_000).to.be.greaterThan(0.85);
    expect(count(1, 7)).to.deep.equal(t1);
  });
});

describe("demo model seeds", () => {
  it("derive a 32-bit seed from the request's seed, or from the prompt when there is none", () => {
    expect(requestSeed(42, [1, 2])).to.equal(requestSeed(42n, [9, 9, 9]));
    expect(requestSeed(42, [])).to.not.equal(requestSeed(43, []));
    // Large seeds: the high half matters.
    expect(requestSeed(2n ** 40n + 1n, [])).to.not.equal(requestSeed(1, []));
    expect(requestSeed(undefined, [1, 2])).to.equal(requestSeed(undefined, [1, 2]));
    expect(requestSeed(undefined, [1, 2])).to.not.equal(requestSeed(undefined, [2, 1]));
    const r = seededRandom(requestSeed(undefined, [5]));
    const xs = Array.from({ length: 1000 }, r);
    expect(Math.min(...xs)).to.be.at.least(0);
    expect(Math.max(...xs)).to.be.below(1);
  });
});
