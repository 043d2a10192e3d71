import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import {
  encodeVector,
  MAX_EMBEDDING_INPUTS,
  parseEmbeddingBody,
} from "../../router/api/embeddings-request.js";
import { embeddingCredit, embeddingWorstCase } from "../../router/api/embeddings-usage.js";

const OPTS = { userSalt: "salt", account: "key-1" };

function param(body: unknown): string | undefined {
  try {
    parseEmbeddingBody(body, OPTS);
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    return (err as TensorClawError).param;
  }
  return "(accepted)";
}

describe("embeddings request parsing", () => {
  it("takes a string or an array of strings, with dimensions, format and a hashed user", () => {
    const one = parseEmbeddingBody({ model: "e", input: "héllo" }, OPTS);
    expect(one.embedding).to.deep.equal({ input: ["héllo"], dimensions: undefined, user: "" });
    expect(one.encodingFormat).to.equal("float");
    expect(one.inputBytes).to.equal(6);
    const many = parseEmbeddingBody(
      { model: "e", input: ["a", "b"], dimensions: 8, encoding_format: "base64", user: "bob" },
      OPTS,
    );
    expect(many.embedding.input).to.deep.equal(["a", "b"]);
    expect(many.embedding.dimensions).to.equal(8);
    expect(many.encodingFormat).to.equal("base64");
    expect(many.embedding.user).to.match(/^u_[0-9a-f]{32}$/);
    expect(many.embedding.user).to.not.contain("bob");
  });

  it("refuses token ids, empty or too many inputs, bad dimensions and formats, naming the field", () => {
    expect(param({ model: "e", input: [1, 2] })).to.equal("input");
    expect(param({ model: "e", input: [[1, 2]] })).to.equal("input");
    expect(param({ model: "e", input: "" })).to.equal("input");
    expect(param({ model: "e", input: ["a", ""] })).to.equal("input");
    expect(param({ model: "e", input: [] })).to.equal("input");
    expect(param({ model: "e", input: new Array(MAX_EMBEDDING_INPUTS + 1).fill("x") })).to.equal("input");
    expect(param({ model: "e", input: new Array(MAX_EMBEDDING_INPUTS).fill("x") })).to.equal("(accepted)");
    expect(param({ model: "e" })).to.equal("input");
    expect(param({ input: "x" })).to.equal("model");
    expect(param({ model: "e", input: "x", dimensions: 0 })).to.equal("dimensions");
    expect(param({ model: "e", input: "x", dimensions: 1.5 })).to.equal("dimensions");
    expect(param({ model: "e", input: "x", dimensions: 16_385 })).to.equal("dimensions");
    expect(param({ model: "e", input: "x", encoding_format: "hex" })).to.equal("encoding_format");
    expect(param({ model: "e", input: "x", user: 3 })).to.equal("user");
    expect(param([])).to.equal("body");
  });

  it("base64 is the little-endian float32 bytes, as OpenAI sends them", () => {
    const v = Float32Array.from([1, -0.5, 0.25]);
    const b64 = encodeVector(v, "base64") as string;
    const bytes = Buffer.from(b64, "base64");
    expect(bytes.length).to.equal(12);
    expect([bytes.readFloatLE(0), bytes.readFloatLE(4), bytes.readFloatLE(8)]).to.deep.equal([1, -0.5, 0.25]);
    expect(encodeVector(v, "float")).to.deep.equal([1, -0.5, 0.25]);
  });
});

describe("embeddings credit and hold", () => {
  const req = { input: ["one two", "three"], dimensions: undefined, user: "" };
  const words = (s: string) => s.split(" ").length;

  it("credits the miner's prompt count bounded by the router's count plus allowances, never completion tokens", () => {
    const bound = 3 + 8 * 2 + 16;
    expect(embeddingCredit(req, 13, words, { promptTokens: 3, completionTokens: 0 })).to.deep.equal({
      promptTokens: 3,
      completionTokens: 0,
      clamped: false,
    });
    expect(embeddingCredit(req, 13, words, { promptTokens: 10_000, completionTokens: 7 })).to.deep.equal({
      promptTokens: bound,
      completionTokens: 0,
      clamped: true,
    });
    // Without a tokenizer: bounded by bytes.
    expect(
      embeddingCredit(req, 13, undefined, { promptTokens: 10_000, completionTokens: 0 }).promptTokens,
    ).to.equal(13 + 8 * 2 + 16);
    expect(embeddingWorstCase(req, 13, words)).to.deep.equal({ promptTokens: bound, counted: 3 });
    expect(embeddingWorstCase(req, 13, undefined)).to.deep.equal({ promptTokens: 45, counted: undefined });
  });
});
