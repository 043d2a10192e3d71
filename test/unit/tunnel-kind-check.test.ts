import { expect } from "chai";
import { ChatRequest, CompletionRequest, EmbeddingRequest } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode, type ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import { TunnelCall } from "../../router/tunnel/call.js";
import {
  chunkCheckFor,
  dispatchChoices,
  MAX_EMBEDDING_DIMENSIONS,
  MAX_EMBEDDING_VALUES_PER_REQUEST,
} from "../../router/tunnel/kind-check.js";
import type { TunnelEvent } from "../../router/tunnel/types.js";

function chunk(over: Partial<ResponseChunk> = {}): ResponseChunk {
  return {
    requestId: 1,
    contentDelta: "",
    toolCalls: [],
    finishReason: 0,
    choiceIndex: 0,
    systemFingerprint: "",
    embeddings: [],
    reasoningDelta: "",
    logprobs: [],
    ...over,
  };
}

const vec = (index: number, values: number[]) => ({ index, values });
const embed = (inputs: number, dimensions?: number) => ({
  embedding: EmbeddingRequest.fromPartial({
    input: Array.from({ length: inputs }, (_, i) => `text ${i}`),
    ...(dimensions === undefined ? {} : { dimensions }),
  }),
});

describe("what a miner may send back, per request kind", () => {
  it("chat and completion answers carry no vectors; their choices are counted for the call's check", () => {
    const chat = ChatRequest.fromPartial({ messages: [] });
    expect(chunkCheckFor(chat).chunk(chunk({ contentDelta: "hi" }))).to.equal(undefined);
    expect(chunkCheckFor(chat).chunk(chunk({ embeddings: [vec(0, [1])] }))).to.match(
      /not an embeddings request/,
    );
    expect(chunkCheckFor(chat).end()).to.equal(undefined);
    const completion = { completion: CompletionRequest.fromPartial({ prompt: ["a", "b"], n: 3 }) };
    expect(chunkCheckFor(completion).chunk(chunk({ embeddings: [vec(0, [1])] }))).to.match(
      /not an embeddings/,
    );
    expect(dispatchChoices(chat)).to.equal(1);
    expect(dispatchChoices(ChatRequest.fromPartial({ messages: [], n: 2 }))).to.equal(2);
    expect(dispatchChoices(completion)).to.equal(6);
    expect(dispatchChoices(embed(3))).to.equal(1);
  });

  it("embedding: one finite vector per input, one length, nothing else", () => {
    const c = chunkCheckFor(embed(3));
    expect(c.chunk(chunk({ embeddings: [vec(1, [0.5, -0.5])] }))).to.equal(undefined);
    expect(c.end()).to.match(/usage after 1 of 3 vectors/);
    expect(c.chunk(chunk({ embeddings: [vec(1, [1, 2])] }))).to.match(/second vector for input 1/);
    expect(c.chunk(chunk({ embeddings: [vec(3, [1, 2])] }))).to.match(/input 3 of 3/);
    expect(c.chunk(chunk({ embeddings: [vec(0, [1, 2, 3])] }))).to.match(/different lengths \(2 and 3\)/);
    expect(c.chunk(chunk({ embeddings: [vec(0, [1, Number.NaN])] }))).to.match(/not a finite number/);
    expect(c.chunk(chunk({ embeddings: [vec(0, [Number.POSITIVE_INFINITY, 1])] }))).to.match(/finite/);
    expect(c.chunk(chunk({ embeddings: [vec(0, [])] }))).to.match(/0 values/);
    expect(c.chunk(chunk({ contentDelta: "x" }))).to.match(/text, tool calls/);
    expect(c.chunk(chunk({ finishReason: 1 }))).to.match(/finish reason/);
    expect(c.chunk(chunk({ choiceIndex: 1 }))).to.match(/embeddings answer/);
    expect(c.chunk(chunk({ embeddings: [vec(0, [1, 1]), vec(2, [0, 1])] }))).to.equal(undefined);
    expect(c.end()).to.equal(undefined);
  });

  it("embedding: the dimensions asked for and the size bounds", () => {
    expect(chunkCheckFor(embed(1, 4)).chunk(chunk({ embeddings: [vec(0, [1, 2])] }))).to.match(
      /2 values when 4 dimensions/,
    );
    const long = new Array<number>(MAX_EMBEDDING_DIMENSIONS + 1).fill(0.1);
    expect(chunkCheckFor(embed(1)).chunk(chunk({ embeddings: [vec(0, long)] }))).to.match(/1 to 16384/);
    // The per-request total holds even when each vector is within bounds.
    const inputs = Math.floor(MAX_EMBEDDING_VALUES_PER_REQUEST / MAX_EMBEDDING_DIMENSIONS) + 1;
    const c = chunkCheckFor(embed(inputs));
    const full = new Array<number>(MAX_EMBEDDING_DIMENSIONS).fill(0.1);
    let problem: string | undefined;
    for (let i = 0; i < inputs && problem === undefined; i++)
      problem = c.chunk(chunk({ embeddings: [vec(i, full)] }));
    expect(problem).to.match(/more than 8388608 vector values/);
  });

  it("a call fails with PROTOCOL and cancels the miner on a bad vector, and on usage before every vector", async () => {
    const run = async (feed: (call: TunnelCall) => void) => {
      const cancels: string[] = [];
      const host = {
        sendCancel: (_: number, r: string) => cancels.push(r),
        sendCredit: () => {},
        ended: () => {},
        released: () => {},
      };
      const call = new TunnelCall(
        1,
        "m",
        host,
        { initialCreditBytes: 1024, cancelGraceMs: 1000 },
        undefined,
        chunkCheckFor(embed(2)),
      );
      feed(call);
      const events: TunnelEvent[] = [];
      for await (const e of call.events) events.push(e);
      return { events, cancels };
    };
    const dup = await run((c) => {
      c.onChunk(chunk({ embeddings: [vec(0, [1])] }));
      c.onChunk(chunk({ embeddings: [vec(0, [1])] }));
    });
    expect(dup.events.map((e) => e.type)).to.deep.equal(["chunk", "error"]);
    expect(dup.events[1]).to.deep.include({ code: RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL });
    expect(dup.cancels).to.deep.equal(["invalid answer"]);
    const short = await run((c) => {
      c.onChunk(chunk({ embeddings: [vec(1, [1])] }));
      c.onUsage(5n, 0n);
    });
    expect(short.events.map((e) => e.type)).to.deep.equal(["chunk", "error"]);
    expect(short.events[1]).to.deep.include({
      code: RequestErrorCode.REQUEST_ERROR_CODE_PROTOCOL,
      message: "the miner sent usage after 1 of 2 vectors",
    });
  });
});
