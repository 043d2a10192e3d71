import { expect } from "chai";
import { Encodings } from "../../common/tokens/encodings.js";
import { countPromptTokens } from "../../common/tokens/prompt.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import { countRequest, creditFromCount } from "../../router/usage/token-credit.js";

function chat(...contents: string[]): ChatRequest {
  return ChatRequest.fromPartial({ messages: contents.map((content) => ({ role: "user", content })) });
}

describe("router-counted credit", () => {
  const encodings = new Encodings();
  before(async () => {
    await encodings.load("o200k_base");
    await encodings.load("cl100k_base");
  });

  it("counts prompt and relayed completion with the named encoding, each kind on its own", () => {
    const count = encodings.get("o200k_base");
    if (count === undefined) throw new Error("not loaded");
    const c = countRequest(
      chat("Hello there, how are you?"),
      { content: "I am fine.", reasoning: "ok", tools: "" },
      count,
    );
    expect(c.messages).to.equal(1);
    expect(c.promptTokens).to.equal(countPromptTokens(chat("Hello there, how are you?"), count));
    expect(c.completionTokens).to.equal(count("I am fine.") + count("ok"));
    // Encodings differ, and the count follows the one given.
    const long = "Привет, как дела? 你好，世界。 ".repeat(20);
    const o200k = countRequest(chat(long), { content: "", reasoning: "", tools: "" }, count);
    const cl100k = countRequest(
      chat(long),
      { content: "", reasoning: "", tools: "" },
      encodings.get("cl100k_base") as (t: string) => number,
    );
    expect(o200k.promptTokens).to.not.equal(cl100k.promptTokens);
  });

  it("credits the miner's report when it is within the router's count plus the template allowances", () => {
    const counted = { promptTokens: 100, completionTokens: 40, messages: 3 };
    expect(creditFromCount(counted, { promptTokens: 120, completionTokens: 41 })).to.deep.equal({
      promptTokens: 120,
      completionTokens: 41,
      clamped: false,
    });
    // Exactly at the allowance: 100 + 8×3 + 16, and 40 + 1.
    expect(creditFromCount(counted, { promptTokens: 140, completionTokens: 41 }).clamped).to.equal(false);
  });

  it("bounds an inflated report by the router's count plus the allowances", () => {
    const counted = { promptTokens: 34_955, completionTokens: 900, messages: 1 };
    expect(creditFromCount(counted, { promptTokens: 204_028, completionTokens: 4096 })).to.deep.equal({
      promptTokens: 34_955 + 8 + 16,
      completionTokens: 901,
      clamped: true,
    });
  });

  it("credits the router's count when the miner reported nothing, and never a negative or fractional figure", () => {
    const counted = { promptTokens: 12, completionTokens: 5, messages: 1 };
    expect(creditFromCount(counted, undefined)).to.deep.equal({
      promptTokens: 12,
      completionTokens: 5,
      clamped: false,
    });
    expect(creditFromCount(counted, { promptTokens: -3, completionTokens: 2.7 })).to.deep.equal({
      promptTokens: 0,
      completionTokens: 2,
      clamped: false,
    });
    expect(creditFromCount(counted, { promptTokens: Number.NaN, completionTokens: Infinity })).to.deep.equal({
      promptTokens: 0,
      completionTokens: 0,
      clamped: false,
    });
  });

  it("counts special-token text from the network as plain text instead of throwing", () => {
    const count = encodings.get("o200k_base") as (t: string) => number;
    expect(count("<|endoftext|> hi")).to.be.greaterThan(1);
  });
});
