import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { parseResponsesBody, parseResponsesChat } from "../../router/api/responses-request.js";

const OPTS = { userSalt: "salt", account: "key1" };

function refusedParam(body: unknown): string | undefined {
  try {
    const r = parseResponsesBody(body);
    parseResponsesChat(r.chatBody, OPTS);
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    return (err as TensorClawError).param;
  }
  throw new Error(`accepted: ${JSON.stringify(body)}`);
}

describe("api responses: the request as a chat request", () => {
  it("maps instructions, input, limits, sampling, user and text.format onto the chat body", () => {
    const r = parseResponsesBody({
      model: "m",
      instructions: "sys",
      input: [
        {
          role: "developer",
          content: [
            { type: "input_text", text: "a" },
            { type: "input_text", text: "b" },
          ],
        },
      ],
      max_output_tokens: 20,
      temperature: 0,
      top_p: 0.5,
      stream: true,
      user: "alice",
      text: { format: { type: "json_schema", name: "r", schema: { type: "object" }, strict: true } },
    });
    expect(r.chatBody).to.deep.equal({
      model: "m",
      messages: [
        { role: "system", content: "sys" },
        { role: "developer", content: "ab" },
      ],
      max_completion_tokens: 20,
      temperature: 0,
      top_p: 0.5,
      stream: true,
      stream_options: { include_usage: true },
      user: "alice",
      response_format: {
        type: "json_schema",
        json_schema: { name: "r", schema: { type: "object" }, strict: true },
      },
    });
    expect(r.echo).to.deep.include({ instructions: "sys", maxOutputTokens: 20, temperature: 0, topP: 0.5 });
    const chat = parseResponsesChat(r.chatBody, OPTS).chat;
    expect(chat).to.include({ maxCompletionTokens: 20, maxTokens: undefined, n: undefined });
  });

  it("names the Responses field in errors the chat parser raises", () => {
    expect(refusedParam({ model: "m", input: "x", max_output_tokens: -1 })).to.equal("max_output_tokens");
    expect(refusedParam({ model: "m", input: "x", temperature: 9 })).to.equal("temperature");
    expect(refusedParam({ model: "m", input: [] })).to.equal("input");
    expect(refusedParam({ model: "m", input: "x", text: { format: { type: "xml" } } })).to.equal(
      "text.format.type",
    );
    expect(refusedParam({ model: "m", input: "x", tools: [{ type: "web_search" }] })).to.equal("tools");
    expect(refusedParam({ model: "m", input: "x", truncation: "auto" })).to.equal("truncation");
  });

  it("accepts an empty tool list and tool_choice none, which ask for nothing", () => {
    const r = parseResponsesBody({ model: "m", input: "x", tools: [], tool_choice: "none", store: false });
    expect(r.chatBody).not.to.have.any.keys("tools", "tool_choice", "store");
  });
});
