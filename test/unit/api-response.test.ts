import { expect } from "chai";
import { FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import { ChunkShaper, CompletionAggregator, openaiUsage } from "../../router/api/openai-response.js";

const IDENT = { id: "chatcmpl-1", created: 1700000000, model: "m" };

function chunk(over: Partial<ResponseChunk> = {}): ResponseChunk {
  return {
    requestId: 1,
    contentDelta: "",
    toolCalls: [],
    finishReason: FinishReason.FINISH_REASON_UNSPECIFIED,
    choiceIndex: 0,
    systemFingerprint: "",
    embeddings: [],
    reasoningDelta: "",
    logprobs: [],
    ...over,
  };
}

describe("api response: stream chunks", () => {
  it("sends the role first, content deltas, then the finish reason", () => {
    const s = new ChunkShaper(IDENT, false);
    const a = JSON.parse(s.chunk(chunk({ contentDelta: "Hel" })));
    const b = JSON.parse(s.chunk(chunk({ contentDelta: "lo" })));
    const c = JSON.parse(s.chunk(chunk({ finishReason: FinishReason.FINISH_REASON_LENGTH })));
    expect(a).to.deep.equal({
      id: "chatcmpl-1",
      object: "chat.completion.chunk",
      created: 1700000000,
      model: "m",
      system_fingerprint: null,
      choices: [
        { index: 0, delta: { role: "assistant", content: "Hel" }, logprobs: null, finish_reason: null },
      ],
    });
    expect(b.choices[0].delta).to.deep.equal({ content: "lo" });
    expect(c.choices[0].delta).to.deep.equal({});
    expect(c.choices[0].finish_reason).to.equal("length");
    expect(a).not.to.have.property("usage");
  });

  it("with include_usage: usage null on every chunk and a final chunk with choices []", () => {
    const s = new ChunkShaper(IDENT, true);
    expect(JSON.parse(s.chunk(chunk({ contentDelta: "x" }))).usage).to.equal(null);
    const u = JSON.parse(s.usageChunk(openaiUsage(3, 4)));
    expect(u.choices).to.deep.equal([]);
    expect(u.usage).to.deep.equal({ prompt_tokens: 3, completion_tokens: 4, total_tokens: 7 });
    expect(u.object).to.equal("chat.completion.chunk");
  });

  it("shapes tool-call deltas: id, type and name first, then argument pieces", () => {
    const s = new ChunkShaper(IDENT, false);
    const first = JSON.parse(
      s.chunk(
        chunk({
          toolCalls: [{ index: 0, id: "call_1", type: "function", functionName: "get", argumentsDelta: "" }],
        }),
      ),
    );
    expect(first.choices[0].delta).to.deep.equal({
      role: "assistant",
      tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "get", arguments: "" } }],
    });
    const next = JSON.parse(
      s.chunk(
        chunk({ toolCalls: [{ index: 0, id: "", type: "", functionName: "", argumentsDelta: '{"a"' }] }),
      ),
    );
    expect(next.choices[0].delta).to.deep.equal({
      tool_calls: [{ index: 0, function: { arguments: '{"a"' } }],
    });
    const end = JSON.parse(s.chunk(chunk({ finishReason: FinishReason.FINISH_REASON_TOOL_CALLS })));
    expect(end.choices[0].finish_reason).to.equal("tool_calls");
  });

  it("relays reasoning as reasoning_content", () => {
    const s = new ChunkShaper(IDENT, false);
    s.chunk(chunk({ contentDelta: "a" }));
    expect(
      JSON.parse(
        s.chunk(chunk({ choiceIndex: 0, systemFingerprint: "", embeddings: [], reasoningDelta: "think" })),
      ).choices[0].delta,
    ).to.deep.equal({
      reasoning_content: "think",
    });
  });
});

describe("api response: aggregation", () => {
  it("joins content and reports usage and finish reason", () => {
    const agg = new CompletionAggregator();
    agg.add(chunk({ contentDelta: "Hel" }));
    agg.add(chunk({ contentDelta: "lo", finishReason: FinishReason.FINISH_REASON_STOP }));
    const c = agg.completion(IDENT, openaiUsage(5, 2));
    expect(c).to.deep.equal({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1700000000,
      model: "m",
      system_fingerprint: null,
      choices: [
        {
          index: 0,
          message: { role: "assistant", content: "Hello", refusal: null },
          logprobs: null,
          finish_reason: "stop",
        },
      ],
      usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
    });
  });

  it("assembles interleaved tool calls by index with null content", () => {
    const agg = new CompletionAggregator();
    const d = (index: number, id: string, name: string, args: string) => ({
      index,
      id,
      type: id === "" ? "" : "function",
      functionName: name,
      argumentsDelta: args,
    });
    agg.add(chunk({ toolCalls: [d(1, "c2", "b", "")] }));
    agg.add(chunk({ toolCalls: [d(0, "c1", "a", '{"x"')] }));
    agg.add(chunk({ toolCalls: [d(0, "", "", ":1}"), d(1, "", "", "{}")] }));
    agg.add(chunk({ finishReason: FinishReason.FINISH_REASON_TOOL_CALLS }));
    const c = agg.completion(IDENT, openaiUsage(1, 1)) as {
      choices: { message: Record<string, unknown>; finish_reason: string }[];
    };
    const choice = c.choices[0];
    expect(choice?.finish_reason).to.equal("tool_calls");
    expect(choice?.message.content).to.equal(null);
    expect(choice?.message.tool_calls).to.deep.equal([
      { id: "c1", type: "function", function: { name: "a", arguments: '{"x":1}' } },
      { id: "c2", type: "function", function: { name: "b", arguments: "{}" } },
    ]);
  });

  it("defaults the finish reason when the miner sent none", () => {
    const agg = new CompletionAggregator();
    agg.add(chunk({ contentDelta: "x" }));
    const c = agg.completion(IDENT, openaiUsage(0, 0)) as { choices: { finish_reason: string }[] };
    expect(c.choices[0]?.finish_reason).to.equal("stop");
  });
});
