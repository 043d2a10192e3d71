import { expect } from "chai";
import { chunkPayloadBytes } from "../../common/chunk-credit.js";

describe("tunnel chunk credit", () => {
  it("counts UTF-8 bytes of text, reasoning and every tool-call string", () => {
    const bytes = chunkPayloadBytes({
      requestId: 1,
      contentDelta: "héllo", // 6 bytes
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
        reasoningDelta: "",
        finishReason: 1,
        logprobs: [],
        toolCalls: [],
      }),
    ).to.equal(0);
  });
});
