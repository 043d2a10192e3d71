import { expect } from "chai";
import {
  clampUsage,
  FINISH_TOKEN_ALLOWANCE,
  maxPromptTokens,
  PER_MESSAGE_ALLOWANCE,
  PER_REQUEST_ALLOWANCE,
} from "../../router/usage/clamp.js";

const PROMPT = { bytes: 100, messages: 2 };

describe("api usage clamp", () => {
  it("credits honest counts unchanged", () => {
    const u = clampUsage(PROMPT, { bytes: 40, maxTokens: 100 }, { promptTokens: 30, completionTokens: 10 });
    expect(u).to.deep.equal({ promptTokens: 30, completionTokens: 10, clamped: false });
  });

  it("caps completion tokens at the relayed bytes (plus the end token)", () => {
    const u = clampUsage(
      PROMPT,
      { bytes: 12, maxTokens: 1000 },
      { promptTokens: 10, completionTokens: 5000 },
    );
    expect(u.completionTokens).to.equal(12 + FINISH_TOKEN_ALLOWANCE);
    expect(u.clamped).to.equal(true);
  });

  it("caps completion tokens at max_tokens", () => {
    const u = clampUsage(PROMPT, { bytes: 1000, maxTokens: 16 }, { promptTokens: 10, completionTokens: 500 });
    expect(u.completionTokens).to.equal(16);
  });

  it("caps prompt tokens by the prompt size", () => {
    const bound = 100 + 2 * PER_MESSAGE_ALLOWANCE + PER_REQUEST_ALLOWANCE;
    expect(maxPromptTokens(PROMPT)).to.equal(bound);
    const u = clampUsage(PROMPT, { bytes: 1, maxTokens: 10 }, { promptTokens: 1e9, completionTokens: 1 });
    expect(u.promptTokens).to.equal(bound);
    expect(u.clamped).to.equal(true);
  });

  it("turns garbage counts into zero", () => {
    const u = clampUsage(
      PROMPT,
      { bytes: 10, maxTokens: 10 },
      { promptTokens: Number.NaN, completionTokens: -5 },
    );
    expect(u).to.deep.equal({ promptTokens: 0, completionTokens: 0, clamped: false });
  });

  it("estimates from bytes when the miner sent no count, and credits nothing for no output", () => {
    expect(clampUsage(PROMPT, { bytes: 9, maxTokens: 100 }, undefined)).to.deep.equal({
      promptTokens: 25,
      completionTokens: 3,
      clamped: false,
    });
    expect(clampUsage(PROMPT, { bytes: 0, maxTokens: 100 }, undefined)).to.deep.equal({
      promptTokens: 0,
      completionTokens: 0,
      clamped: false,
    });
  });
});
