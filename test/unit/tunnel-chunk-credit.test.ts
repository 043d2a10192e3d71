import { readFileSync } from "node:fs";
import { expect } from "chai";
import { chunkAnswerBytes, chunkPayloadBytes } from "../../common/chunk-credit.js";
import {
  boundedLogprob,
  LOGPROB_FLOOR,
  logprobsProblem,
  MAX_LOGPROBS_PER_CHUNK,
  MAX_TOP_LOGPROBS,
} from "../../common/chunk-logprobs.js";
import type { TokenLogprob } from "../../gen/tensorclaw/v1/chat.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";

function withLogprobs(contentDelta: string, logprobs: TokenLogprob[]): ResponseChunk {
  return {
    requestId: 1,
    contentDelta,
    choiceIndex: 0,
    systemFingerprint: "",
    embeddings: [],
    reasoningDelta: "",
    finishReason: 0,
    toolCalls: [],
    logprobs,
  };
}

function entries(n: number, top = 0): TokenLogprob[] {
  const alts = Array.from({ length: top }, () => ({ token: "", logprob: -1 }));
  return Array.from({ length: n }, () => ({ token: "", logprob: -1, topLogprobs: alts }));
}

describe("tunnel chunk credit", () => {
  it("counts UTF-8 bytes of text, reasoning and every tool-call string", () => {
    const bytes = chunkPayloadBytes({
      requestId: 1,
      contentDelta: "héllo", // 6 bytes
      choiceIndex: 0,
      systemFingerprint: "",
      embeddings: [],
      reasoningDelta: "€", // 3 bytes
      finishReason: 0,
      logprobs: [],
      toolCalls: [
        { index: 0, id: "c1", type: "function", functionName: "get", argumentsDelta: '{"a":1}' },
        { index: 1, id: "", type: "", functionName: "", argumentsDelta: "😀" }, // 4 bytes
      ],
    });
    expect(bytes).to.equal(6 + 3 + (2 + 8 + 3 + 7) + 4);
  });

  it("charges nothing for an empty chunk (a bare finish reason)", () => {
    expect(
      chunkPayloadBytes({
        requestId: 1,
        contentDelta: "",
        choiceIndex: 0,
        systemFingerprint: "",
        embeddings: [],
        reasoningDelta: "",
        finishReason: 1,
        logprobs: [],
        toolCalls: [],
      }),
    ).to.equal(0);
  });

  it("charges the UTF-8 length of every logprob token, alternatives included, on top of the answer", () => {
    const chunk = withLogprobs("hé", [
      {
        token: "h",
        logprob: -0.1,
        topLogprobs: [
          { token: "h", logprob: -0.1 },
          { token: "€", logprob: -3 },
        ],
      },
      { token: "é", logprob: -0.2, topLogprobs: [] },
    ]);
    expect(chunkAnswerBytes(chunk)).to.equal(3);
    expect(chunkPayloadBytes(chunk)).to.equal(3 + (1 + 1 + 3) + 2);
  });
});

describe("tunnel chunk logprob limits", () => {
  it("charges the UTF-8 length of system_fingerprint, which is no part of the answer", () => {
    const c = { ...withLogprobs("ab", []), systemFingerprint: "fp_é" };
    expect(chunkPayloadBytes(c)).to.equal(2 + 5);
    expect(chunkAnswerBytes(c)).to.equal(2);
  });

  it("accepts up to the per-chunk limits and names what a chunk exceeds", () => {
    expect(logprobsProblem(withLogprobs("", []))).to.equal(undefined);
    expect(logprobsProblem(withLogprobs("", entries(MAX_LOGPROBS_PER_CHUNK, MAX_TOP_LOGPROBS)))).to.equal(
      undefined,
    );
    expect(logprobsProblem(withLogprobs("", entries(MAX_LOGPROBS_PER_CHUNK + 1)))).to.match(
      /257 logprobs in one chunk/,
    );
    const wide = [...entries(3), ...entries(1, MAX_TOP_LOGPROBS + 1)];
    expect(logprobsProblem(withLogprobs("", wide))).to.match(/21 top_logprobs/);
  });

  it("bounds log-probabilities to [floor, 0], NaN to the floor", () => {
    expect(boundedLogprob(-0.5)).to.equal(-0.5);
    expect(boundedLogprob(1e-9)).to.equal(0);
    expect(boundedLogprob(Number.POSITIVE_INFINITY)).to.equal(0);
    expect(boundedLogprob(Number.NEGATIVE_INFINITY)).to.equal(LOGPROB_FLOOR);
    expect(boundedLogprob(Number.NaN)).to.equal(LOGPROB_FLOOR);
    expect(boundedLogprob(-1e300)).to.equal(LOGPROB_FLOOR);
  });

  it("are the limits tunnel.proto states to miners", () => {
    const proto = readFileSync(new URL("../../proto/tensorclaw/v1/tunnel.proto", import.meta.url), "utf8");
    const said = /At most (\d+) entries per chunk, each with at most (\d+)\s*\/\/\s*`top_logprobs`/.exec(
      proto,
    );
    expect(said?.slice(1).map(Number)).to.deep.equal([MAX_LOGPROBS_PER_CHUNK, MAX_TOP_LOGPROBS]);
  });
});
