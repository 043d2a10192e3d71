import { expect } from "chai";
import {
  DEMO_EMBEDDING_DIMENSIONS,
  DEMO_EMBEDDING_MODEL_ID,
  demoEmbedding,
} from "../../common/demo-model/embedding.js";
import { RequestErrorCode, RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { BackendFailure } from "../../miner/backend/backend.js";
import { DemoBackend } from "../../miner/backend/demo.js";
import { embeddingRequestBody, embeddingsFromResponse } from "../../miner/backend/openai-embeddings.js";
import { embeddingBatches, MAX_VALUES_PER_CHUNK } from "../../miner/embedding-relay.js";
import { offersFor } from "../../miner/model-catalog.js";

describe("miner embeddings", () => {
  it("asks the backend for floats, with dimensions and user only when given", () => {
    expect(embeddingRequestBody("m", { input: ["a"], dimensions: undefined, user: "" })).to.deep.equal({
      model: "m",
      input: ["a"],
      encoding_format: "float",
    });
    expect(embeddingRequestBody("m", { input: ["a"], dimensions: 3, user: "u_1" })).to.deep.equal({
      model: "m",
      input: ["a"],
      encoding_format: "float",
      dimensions: 3,
      user: "u_1",
    });
  });

  it("puts the backend's vectors in input order and refuses anything but one numeric vector per input", () => {
    const doc = {
      data: [
        { index: 1, embedding: [0, 1] },
        { index: 0, embedding: [1, 0] },
      ],
      usage: { prompt_tokens: 5 },
    };
    expect(embeddingsFromResponse(doc, 2)).to.deep.equal({
      vectors: [
        [1, 0],
        [0, 1],
      ],
      promptTokens: 5,
    });
    const bad = (d: unknown, n = 2) => expect(() => embeddingsFromResponse(d, n)).to.throw(BackendFailure);
    bad({ data: [{ index: 0, embedding: [1] }] });
    bad({
      data: [
        { index: 0, embedding: [1] },
        { index: 0, embedding: [1] },
      ],
    });
    bad({
      data: [
        { index: 0, embedding: [1] },
        { index: 2, embedding: [1] },
      ],
    });
    bad({
      data: [
        { index: 0, embedding: [1] },
        { index: 1, embedding: ["x"] },
      ],
    });
    bad({
      data: [
        { index: 0, embedding: "AAAA" },
        { index: 1, embedding: [1] },
      ],
    });
    bad({});
    expect(
      embeddingsFromResponse({ data: [{ index: 0, embedding: [1] }], usage: { prompt_tokens: -1 } }, 1)
        .promptTokens,
    ).to.equal(undefined);
  });

  it("batches vectors into chunks of bounded size, never splitting one", () => {
    const big = new Array<number>(MAX_VALUES_PER_CHUNK / 2 + 1).fill(0.5);
    const batches = embeddingBatches([big, big, [1]]);
    expect(batches.map((b) => b.map((e) => e.index))).to.deep.equal([[0], [1, 2]]);
  });

  it("offers --embedding-models for embeddings only, other models as the backend says, else chat only", () => {
    const policy = { configured: [], maxConcurrency: 2, contextLength: 0, embeddingModels: ["e"] };
    const offers = offersFor(
      [
        { id: "c", contextLength: 0 },
        { id: "e", contextLength: 0 },
        { id: "d", contextLength: 0, kinds: ["embedding"] },
      ],
      policy,
    );
    expect(offers.map((o) => [o.id, o.kinds])).to.deep.equal([
      ["c", []],
      ["e", [RequestKind.REQUEST_KIND_EMBEDDING]],
      ["d", [RequestKind.REQUEST_KIND_EMBEDDING]],
    ]);
  });

  it("the demo embedding is deterministic, unit length, honours dimensions and relates shared words", async () => {
    const a = demoEmbedding("the quick brown fox");
    expect(a).to.have.length(DEMO_EMBEDDING_DIMENSIONS);
    expect(demoEmbedding("the quick brown fox")).to.deep.equal(a);
    expect(Math.hypot(...a)).to.be.closeTo(1, 1e-9);
    expect(Math.hypot(...demoEmbedding("x", 3))).to.be.closeTo(1, 1e-9);
    expect(demoEmbedding("x", 3)).to.have.length(3);
    const dot = (x: number[], y: number[]) => x.reduce((s, v, i) => s + v * (y[i] ?? 0), 0);
    expect(dot(a, demoEmbedding("The quick brown dog"))).to.be.greaterThan(
      dot(a, demoEmbedding("salt and pepper")),
    );
    expect(() => demoEmbedding("x", DEMO_EMBEDDING_DIMENSIONS + 1)).to.throw(RangeError);
    // The miner's demo backend refuses it as the caller's error.
    const refused = await new DemoBackend()
      .embed(
        DEMO_EMBEDDING_MODEL_ID,
        { input: ["x"], dimensions: DEMO_EMBEDDING_DIMENSIONS + 1, user: "" },
        new AbortController().signal,
      )
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(refused).to.be.instanceOf(BackendFailure);
    expect((refused as BackendFailure).code).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST);
  });
});
