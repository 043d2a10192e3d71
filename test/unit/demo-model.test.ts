// The built-in demo model: its tokenizer and template, and the properties a
// validator relies on — real normalised probabilities, determinism, greedy
// and seeded sampling, scores that match what generation reported, answers
// that end, and a clear gap between its own answers and filler.
import { expect } from "chai";
import { renderChatPrompt } from "../../common/demo-model/chat-template.js";
import { DEMO_CORPUS, topicDocuments } from "../../common/demo-model/corpus.js";
import { buildDemoModel, type DemoModel, loadDemoModel } from "../../common/demo-model/model.js";
import { loadDemoTokenizer, O200K_EOS_ID, O200K_REGULAR_TOKENS } from "../../common/demo-model/tokenizer.js";

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const QUESTIONS = [
  "How do I make bread?",
  "Why are there tides?",
  "What does a router do?",
  "How deep should I plant seeds?",
  "Explain quantum computing.",
  "hi",
];
const FILLER = [
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.",
  "I'm sorry, but I can't help with that request.",
  "The quick brown fox jumps over the lazy dog.",
];

describe("demo model (built-in)", () => {
  let model: DemoModel;
  const ask = (content: string) => model.encode(renderChatPrompt([{ role: "user", content }]));

  before(async () => {
    model = await loadDemoModel();
  });

  it("uses o200k_base: ordinary ids below 199998, end-of-text 199999, special-token text as plain text", async () => {
    const tok = await loadDemoTokenizer();
    expect(tok.tokenText(O200K_REGULAR_TOKENS - 1)).to.be.a("string").that.is.not.empty;
    expect(() => tok.tokenText(O200K_REGULAR_TOKENS)).to.throw();
    expect(tok.tokenText(O200K_EOS_ID)).to.equal("<|endoftext|>");
    expect(tok.encode("a <|endoftext|> b")).to.not.include(O200K_EOS_ID);
    expect(model.isToken(O200K_EOS_ID)).to.equal(true);
    expect(model.isToken(O200K_REGULAR_TOKENS)).to.equal(false);
    expect(model.isToken(200_000)).to.equal(false); // another special token: not in the vocabulary
  });

  it("renders the chat template the corpus dialogues are written in", () => {
    const msgs = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi" },
    ];
    expect(renderChatPrompt(msgs)).to.equal("system: Be brief.\nuser: Hi\nassistant:");
    expect(renderChatPrompt(msgs, { addGenerationPrompt: false })).to.equal("system: Be brief.\nuser: Hi\n");
    const docs = topicDocuments("Some prose\nover two lines.\n\nQ: Why?\nA: Because\nit is.\n");
    expect(docs).to.deep.equal(["Some prose over two lines.", "user: Why?\nassistant: Because it is."]);
    expect(() => topicDocuments("Q: a question with no answer")).to.throw(/assistant/);
    // The built-in corpus: a few KB of text in every topic, with dialogues in every topic.
    for (const t of DEMO_CORPUS) {
      const d = topicDocuments(t.text);
      expect(
        d.some((x) => x.startsWith("user: ")),
        t.name,
      ).to.equal(true);
      expect(d.join(" ").length, t.name).to.be.greaterThan(800);
    }
  });

  it("gives a normalised distribution over the whole vocabulary after any context", () => {
    const contexts = [
      [],
      ask("How do I make bread?"),
      [...ask("Tell me about the sea."), ...model.encode(" The sea is never still.")],
      model.encode("zebra quantum 東京 🙂"),
    ];
    for (const ctx of contexts) {
      const d = model.distribution(ctx);
      let sum = 0;
      for (let id = 0; id < O200K_REGULAR_TOKENS; id++) sum += d.prob(id);
      sum += d.prob(O200K_EOS_ID);
      expect(sum).to.be.closeTo(1, 1e-9);
      expect(d.unseenEach).to.be.greaterThan(0);
    }
  });

  it("is deterministic, and a second build of the model is identical", async () => {
    const again = buildDemoModel(await loadDemoTokenizer());
    for (const q of QUESTIONS) {
      const opts = { promptTokens: ask(q), maxTokens: 40, temperature: 1, topLogprobs: 3 };
      expect(again.generate(opts)).to.deep.equal(model.generate(opts));
      expect(model.generate(opts)).to.deep.equal(model.generate(opts));
    }
  });

  it("greedy (temperature 0) takes the most likely token at every step, whatever the seed", () => {
    for (const q of QUESTIONS) {
      const g = model.generate({
        promptTokens: ask(q),
        maxTokens: 40,
        temperature: 0,
        topLogprobs: 1,
        seed: 1,
      });
      expect(g.tokens).to.not.be.empty;
      for (const t of g.tokens) expect(t.id).to.equal(t.top[0]?.id);
      expect(
        model.generate({ promptTokens: ask(q), maxTokens: 40, temperature: 0, topLogprobs: 1, seed: 2 }),
      ).to.deep.equal(g);
    }
    // Answers depend on the question.
    const answers = new Set(
      QUESTIONS.map((q) =>
        model
          .generate({ promptTokens: ask(q), maxTokens: 40, temperature: 0 })
          .tokens.map((t) => t.text)
          .join(""),
      ),
    );
    expect(answers.size).to.be.at.least(4);
  });

  it("samples with the request's seed, or a seed derived from the prompt", () => {
    const prompt = ask("Tell me about the weather.");
    const text = (seed?: number) =>
      model
        .generate({
          promptTokens: prompt,
          maxTokens: 60,
          temperature: 1,
          ...(seed === undefined ? {} : { seed }),
        })
        .tokens.map((t) => t.text)
        .join("");
    expect(text(5)).to.equal(text(5));
    expect(new Set([1, 2, 3, 4, 5, 6, 7, 8].map(text)).size).to.be.at.least(4);
    expect(text()).to.equal(text());
    // Sampling does not only replay the greedy answer.
    const greedy = model
      .generate({ promptTokens: prompt, maxTokens: 60, temperature: 0 })
      .tokens.map((t) => t.text)
      .join("");
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(text).filter((t) => t !== greedy)).to.not.be.empty;
  });

  it("scores an answer with exactly the logprobs and alternatives generation reported", () => {
    for (const [i, q] of QUESTIONS.entries()) {
      const prompt = ask(q);
      const g = model.generate({
        promptTokens: prompt,
        maxTokens: 50,
        temperature: i % 2,
        seed: i,
        topLogprobs: 5,
      });
      const ids = g.tokens.map((t) => t.id);
      expect(model.score(prompt, ids, 5)).to.deep.equal(g.tokens);
      // Without alternatives the cheaper path gives the same numbers.
      const plain = model.score(prompt, ids, 0);
      plain.forEach((t, j) => {
        expect(t.logprob).to.be.closeTo(g.tokens[j]?.logprob as number, 1e-12);
      });
    }
  });

  it("lists alternatives most likely first, and nothing outside them is more likely", () => {
    const ctx = ask("How do I make bread?");
    const d = model.distribution(ctx);
    const [t] = model.score(ctx, [model.encode(" The")[0] as number], 20);
    const top = t?.top ?? [];
    expect(top).to.have.length(20);
    for (let i = 1; i < top.length; i++)
      expect(top[i - 1]?.logprob).to.be.at.least(top[i]?.logprob as number);
    const floor = top.at(-1)?.logprob as number;
    const listed = new Set(top.map((x) => x.id));
    d.known.forEach((p, i) => {
      if (!listed.has(model.vocabulary.known[i] as number)) expect(Math.log(p)).to.be.at.most(floor);
    });
    expect(top[0]?.text).to.equal(model.tokenText(top[0]?.id as number));
  });

  it("ends answers by itself, or at max_tokens; the stop token is never part of the answer", () => {
    let stopped = 0;
    for (const [i, q] of QUESTIONS.entries()) {
      const g = model.generate({ promptTokens: ask(q), maxTokens: 200, temperature: 1, seed: i });
      if (g.finishReason === "stop") stopped++;
      for (const t of g.tokens) {
        expect(t.id).to.not.equal(model.eosId);
        expect(t.text).to.not.contain("\n");
      }
    }
    expect(stopped).to.be.at.least(QUESTIONS.length - 1);
    const short = model.generate({ promptTokens: ask("How do I make bread?"), maxTokens: 3, temperature: 0 });
    expect(short.tokens).to.have.length(3);
    expect(short.finishReason).to.equal("length");
    expect(model.generate({ promptTokens: ask("hi"), maxTokens: 0 })).to.deep.equal({
      tokens: [],
      finishReason: "length",
    });
    expect(() => model.generate({ promptTokens: [], maxTokens: -1 })).to.throw(RangeError);
    expect(() => model.generate({ promptTokens: [], maxTokens: 1, topLogprobs: 21 })).to.throw(RangeError);
  });

  it("holds stops back for minTokens, writing the most likely token that does not stop", () => {
    // A text that ends a sentence: the model would end at once, as its corpus documents do.
    const ids = model.encode("What makes the tide come in?");
    expect(model.generate({ promptTokens: ids, maxTokens: 8, temperature: 0 }).tokens).to.deep.equal([]);
    const held = model.generate({ promptTokens: ids, maxTokens: 8, temperature: 0, minTokens: 1 });
    expect(held.tokens.length).to.be.at.least(1);
    const best = model
      .distribution(ids)
      .top(32)
      .find((t) => !model.isStopToken(t.id));
    expect(held.tokens[0]?.id).to.equal(best?.id);
    // Only the first token is held back from stopping; no token written is a stop token.
    for (const t of held.tokens) expect(model.isStopToken(t.id)).to.equal(false);
    expect(model.generate({ promptTokens: ids, maxTokens: 0, minTokens: 1 }).tokens).to.deep.equal([]);
  });

  it("scores its own re-tokenized answers far above filler (mean logprob per token)", () => {
    const honest: number[] = [];
    const filler: number[] = [];
    for (const [i, q] of QUESTIONS.entries()) {
      const prompt = ask(q);
      for (const temperature of [0, 1]) {
        const text = model
          .generate({ promptTokens: prompt, maxTokens: 64, temperature, seed: i })
          .tokens.map((t) => t.text)
          .join("");
        honest.push(mean(model.score(prompt, model.encode(text), 0).map((t) => t.logprob)));
      }
      for (const f of FILLER)
        filler.push(mean(model.score(prompt, model.encode(f), 0).map((t) => t.logprob)));
    }
    // Measured when written: honest −0.19 … −0.74, filler −14.5 … −19.6.
    expect(Math.min(...honest)).to.be.greaterThan(-3);
    expect(Math.max(...filler)).to.be.lessThan(-10);
  });
});
