import { expect } from "chai";
import { ChatRequest, FinishReason } from "../../gen/tensorclaw/v1/chat.js";
import { RequestErrorCode } from "../../gen/tensorclaw/v1/tunnel.js";
import { BackendFailure, codeForHttpStatus } from "../../miner/backend/backend.js";
import { eventsFromChunk, eventsFromCompletion, finishReasonOf } from "../../miner/backend/openai-chunk.js";
import { openAIRequestBody } from "../../miner/backend/openai-request-body.js";

function chunk(delta: unknown, finish: string | null = null, extra: Record<string, unknown> = {}) {
  return {
    id: "c",
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...extra,
  };
}

describe("miner OpenAI mapping", () => {
  describe("stream chunks to events", () => {
    it("maps content, reasoning (both spellings) and finish reasons", () => {
      expect(eventsFromChunk(chunk({ content: "Hi" }))).to.deep.equal([
        {
          type: "delta",
          content: "Hi",
          reasoning: "",
          toolCalls: [],
          finishReason: FinishReason.FINISH_REASON_UNSPECIFIED,
        },
      ]);
      const [r1] = eventsFromChunk(chunk({ reasoning_content: "think" }));
      const [r2] = eventsFromChunk(chunk({ reasoning: "ponder", content: null }));
      expect(r1).to.include({ reasoning: "think", content: "" });
      expect(r2).to.include({ reasoning: "ponder", content: "" });
      expect(finishReasonOf("stop")).to.equal(FinishReason.FINISH_REASON_STOP);
      expect(finishReasonOf("length")).to.equal(FinishReason.FINISH_REASON_LENGTH);
      expect(finishReasonOf("tool_calls")).to.equal(FinishReason.FINISH_REASON_TOOL_CALLS);
      expect(finishReasonOf("function_call")).to.equal(FinishReason.FINISH_REASON_TOOL_CALLS);
      expect(finishReasonOf("content_filter")).to.equal(FinishReason.FINISH_REASON_CONTENT_FILTER);
      expect(finishReasonOf("eos")).to.equal(FinishReason.FINISH_REASON_STOP);
      expect(finishReasonOf(null)).to.equal(FinishReason.FINISH_REASON_UNSPECIFIED);
    });

    it("maps tool-call deltas with their index, id, name and argument pieces", () => {
      const [first] = eventsFromChunk(
        chunk({
          tool_calls: [
            { index: 1, id: "call_9", type: "function", function: { name: "get", arguments: "" } },
          ],
        }),
      );
      const [next] = eventsFromChunk(chunk({ tool_calls: [{ index: 1, function: { arguments: '{"a":' } }] }));
      expect(first?.type === "delta" && first.toolCalls).to.deep.equal([
        { index: 1, id: "call_9", type: "function", functionName: "get", argumentsDelta: "" },
      ]);
      expect(next?.type === "delta" && next.toolCalls).to.deep.equal([
        { index: 1, id: "", type: "", functionName: "", argumentsDelta: '{"a":' },
      ]);
    });

    it("emits nothing for an empty role-only delta and reads usage from a choice-less chunk", () => {
      expect(eventsFromChunk(chunk({ role: "assistant", content: "" }))).to.deep.equal([]);
      expect(
        eventsFromChunk({
          choices: [],
          usage: { prompt_tokens: 12, completion_tokens: 34, total_tokens: 46 },
        }),
      ).to.deep.equal([{ type: "usage", promptTokens: 12, completionTokens: 34 }]);
      // Usage with nonsense numbers is ignored (the tokenizer counts instead).
      expect(
        eventsFromChunk({ choices: [], usage: { prompt_tokens: -1, completion_tokens: 1.5 } }),
      ).to.deep.equal([]);
    });

    it("turns an error chunk or a non-object into a BACKEND_ERROR failure", () => {
      for (const bad of [{ error: { message: "CUDA out of memory" } }, [1, 2], "text", null]) {
        let caught: unknown;
        try {
          eventsFromChunk(bad);
        } catch (e) {
          caught = e;
        }
        expect(caught).to.be.instanceOf(BackendFailure);
        expect((caught as BackendFailure).code).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR);
        // The backend's own words stay out of the user-visible message.
        expect((caught as BackendFailure).message).not.to.include("CUDA");
      }
    });

    it("maps a whole non-streamed completion, tool calls included", () => {
      const evs = eventsFromCompletion({
        choices: [
          {
            index: 0,
            message: {
              role: "assistant",
              content: null,
              tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
            },
            finish_reason: "tool_calls",
          },
        ],
        usage: { prompt_tokens: 3, completion_tokens: 4 },
      });
      expect(evs).to.deep.equal([
        {
          type: "delta",
          content: "",
          reasoning: "",
          toolCalls: [{ index: 0, id: "c1", type: "function", functionName: "f", argumentsDelta: "{}" }],
          finishReason: FinishReason.FINISH_REASON_TOOL_CALLS,
        },
        { type: "usage", promptTokens: 3, completionTokens: 4 },
      ]);
    });
  });

  describe("HTTP status to request error code", () => {
    it("follows the tunnel.proto meanings", () => {
      expect(codeForHttpStatus(429)).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_OVERLOADED);
      expect(codeForHttpStatus(400)).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST);
      expect(codeForHttpStatus(422)).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST);
      expect(codeForHttpStatus(404)).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_MODEL_UNAVAILABLE);
      expect(codeForHttpStatus(401)).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR);
      expect(codeForHttpStatus(500)).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_ERROR);
      expect(codeForHttpStatus(503)).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_BACKEND_UNAVAILABLE);
      expect(codeForHttpStatus(504)).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_TIMEOUT);
    });
  });

  describe("ChatRequest to OpenAI body", () => {
    it("maps every structured field to its OpenAI name and streams with usage when the user streams", () => {
      const chat = ChatRequest.fromPartial({
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", contentPartsJson: '[{"type":"text","text":"hi"}]' },
          {
            role: "assistant",
            toolCalls: [{ id: "c1", type: "function", functionName: "f", functionArguments: '{"x":1}' }],
          },
          { role: "tool", content: "42", toolCallId: "c1", name: "f" },
        ],
        temperature: 0.5,
        topP: 0.9,
        maxTokens: 64,
        stop: ["END"],
        seed: 7n,
        frequencyPenalty: 0.1,
        presencePenalty: 0.2,
        tools: [
          {
            type: "function",
            name: "f",
            description: "d",
            parametersJson: '{"type":"object"}',
            strict: true,
          },
        ],
        toolChoice: { choice: { $case: "functionName", value: "f" } },
        parallelToolCalls: false,
        responseFormat: { type: "json_schema", jsonSchemaJson: '{"name":"s","schema":{}}' },
        user: "u-hash",
        extraJson: '{"logprobs":true,"temperature":2,"stream":false,"n":3}',
        stream: true,
      });
      const body = openAIRequestBody("m", chat);
      expect(body).to.deep.equal({
        model: "m",
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: [{ type: "text", text: "hi" }] },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: '{"x":1}' } }],
          },
          { role: "tool", content: "42", name: "f", tool_call_id: "c1" },
        ],
        stream: true,
        stream_options: { include_usage: true },
        temperature: 0.5,
        top_p: 0.9,
        max_tokens: 64,
        stop: ["END"],
        seed: 7,
        frequency_penalty: 0.1,
        presence_penalty: 0.2,
        tools: [
          {
            type: "function",
            function: { name: "f", description: "d", parameters: { type: "object" }, strict: true },
          },
        ],
        tool_choice: { type: "function", function: { name: "f" } },
        parallel_tool_calls: false,
        response_format: { type: "json_schema", json_schema: { name: "s", schema: {} } },
        user: "u-hash",
        // extra_json adds fields but never overrides structured ones, stream or n.
        logprobs: true,
      });
    });

    it("asks for one whole completion, without stream options, when the user does not stream", () => {
      const chat = ChatRequest.fromPartial({
        messages: [{ role: "user", content: "hi" }],
        extraJson: '{"stream":true,"stream_options":{"include_usage":false},"n":2,"logprobs":true}',
        stream: false,
      });
      expect(openAIRequestBody("m", chat)).to.deep.equal({
        model: "m",
        messages: [{ role: "user", content: "hi" }],
        stream: false,
        logprobs: true,
      });
    });

    it("refuses JSON-carrying fields that do not parse with INVALID_REQUEST", () => {
      for (const partial of [
        { messages: [{ role: "user", contentPartsJson: "[oops" }] },
        { messages: [{ role: "user", content: "x" }], extraJson: "[1]" },
        { messages: [{ role: "user", content: "x" }], tools: [{ name: "f", parametersJson: "{" }] },
      ]) {
        let caught: unknown;
        try {
          openAIRequestBody("m", ChatRequest.fromPartial(partial));
        } catch (e) {
          caught = e;
        }
        expect((caught as BackendFailure).code).to.equal(RequestErrorCode.REQUEST_ERROR_CODE_INVALID_REQUEST);
      }
    });

    it("does not let extra_json set the body's prototype", () => {
      const body = openAIRequestBody(
        "m",
        ChatRequest.fromPartial({
          messages: [{ role: "user", content: "x" }],
          extraJson: '{"__proto__":{"polluted":1}}',
        }),
      );
      expect((body as { polluted?: unknown }).polluted).to.equal(undefined);
      expect(Object.getPrototypeOf(body)).to.equal(Object.prototype);
    });
  });
});
