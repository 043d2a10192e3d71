import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { parseCompletionBody } from "../../router/api/completions-request.js";
import { legacyLogprobs } from "../../router/api/completions-sinks.js";
import { completionCredit, completionWorstCase } from "../../router/api/completions-usage.js";

const OPTS = { userSalt: "salt", account: "key-1" };

function param(body: Record<string, unknown>): string | undefined {
  try {
    parseCompletionBody({ model: "m", prompt: "x", ...body }, OPTS);
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    return (err as TensorClawError).param;
  }
  return "(accepted)";
}

describe("completions request parsing", () => {
  it("maps OpenAI's fields, keeps max_tokens absent when absent, and counts choices", () => {
    const p = parseCompletionBody({ model: "m", prompt: ["a", "bé"], n: 3, suffix: "s" }, OPTS);
    expect(p.completion.maxTokens).to.equal(undefined);
    expect(p.choices).to.equal(6);
    expect(p.promptBytes).to.equal(1 + 1 + 3 + 1);
    const q = parseCompletionBody(
      { model: "m", prompt: "x", max_tokens: 5, logprobs: 2, echo: true, stop: "\n", seed: 3, best_of: 1 },
      OPTS,
    );
    expect(q.completion).to.deep.include({ maxTokens: 5, logprobs: 2, echo: true, seed: 3n });
    expect(q.completion.stop).to.deep.equal(["\n"]);
  });

  it("refuses what it cannot serve, naming the field", () => {
    expect(param({ prompt: [[1, 2]] })).to.equal("prompt");
    expect(param({ prompt: [] })).to.equal("prompt");
    expect(param({ prompt: 5 })).to.equal("prompt");
    expect(param({ n: 9 })).to.equal("n");
    expect(param({ n: 2, best_of: 3 })).to.equal("best_of");
    expect(param({ n: 2, best_of: 2 })).to.equal("(accepted)");
    expect(param({ logprobs: 6 })).to.equal("logprobs");
    expect(param({ temperature: 3 })).to.equal("temperature");
    expect(param({ stop: ["a", "b", "c", "d", "e"] })).to.equal("stop");
    expect(param({ stream_options: { include_usage: true } })).to.equal("stream_options");
    expect(param({ echo: "yes" })).to.equal("echo");
  });
});

describe("completions logprobs and credit", () => {
  it("legacy logprobs: bounded values, at most `top` alternatives, offsets from where the chunk starts", () => {
    const lp = legacyLogprobs(
      [
        {
          token: "ab",
          logprob: 0.5,
          topLogprobs: [
            { token: "ab", logprob: -1 },
            { token: "x", logprob: -2 },
          ],
        },
        { token: "c", logprob: Number.NaN, topLogprobs: [] },
      ],
      10,
      1,
    );
    expect(lp).to.deep.equal({
      tokens: ["ab", "c"],
      token_logprobs: [0, -9999],
      top_logprobs: [{ ab: -1 }, {}],
      text_offset: [10, 12],
    });
  });

  it("credits at most the relayed text plus one token per choice, within the per-choice ceiling; echo is not work", () => {
    const words = (s: string) => (s === "" ? 0 : s.trim().split(/\s+/).length);
    const req = parseCompletionBody({ model: "m", prompt: ["a b", "c"], n: 2 }, OPTS).completion;
    const out = { choices: ["one two", undefined, "three four five", "six"], bytes: 23 };
    const u = completionCredit(req, 4, 10, out, words, { promptTokens: 99, completionTokens: 999 });
    // Three choices sent text: each gets its tokens plus one end-of-text token.
    expect(u.completionTokens).to.equal(6 + 3);
    expect(u.promptTokens).to.equal(3 + 8 * 2 + 16);
    // The per-choice ceiling (1 + 1): the long choice cannot use the others' room.
    expect(
      completionCredit(req, 4, 1, out, words, { promptTokens: 1, completionTokens: 999 }).completionTokens,
    ).to.equal(2 + 2 + 2);
    const echoed = parseCompletionBody({ model: "m", prompt: "a b", echo: true }, OPTS).completion;
    const e = completionCredit(echoed, 3, 10, { choices: ["a b c"], bytes: 5 }, words, {
      promptTokens: 2,
      completionTokens: 3,
    });
    expect(e.completionTokens).to.equal(1 + 1);
    expect(completionWorstCase(req, 4, 10, words)).to.deep.equal({
      promptTokens: 3 + 8 * 2 + 16,
      completionTokens: 4 * 11,
      counted: 3,
    });
  });
});
