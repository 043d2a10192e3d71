import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { hashUser, parseChatBody, type RequestOptions } from "../../router/api/openai-request.js";

const OPTS: RequestOptions = { userSalt: "salt", account: "key1" };

function base(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: "m", messages: [{ role: "user", content: "hi" }], ...extra };
}

function refused(body: unknown): TensorClawError {
  try {
    parseChatBody(body, OPTS);
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    return err as TensorClawError;
  }
  throw new Error(`accepted: ${JSON.stringify(body)}`);
}

describe("api request: validation", () => {
  const cases: [string, unknown, string][] = [
    ["body not an object", [1, 2], "body"],
    ["missing model", { messages: [{ role: "user", content: "x" }] }, "model"],
    ["empty model", base({ model: "" }), "model"],
    ["missing messages", { model: "m" }, "messages"],
    ["empty messages", base({ messages: [] }), "messages"],
    ["message not an object", base({ messages: ["hi"] }), "messages[0]"],
    ["message without role", base({ messages: [{ content: "x" }] }), "messages[0].role"],
    ["user message without content", base({ messages: [{ role: "user" }] }), "messages[0].content"],
    ["content of wrong type", base({ messages: [{ role: "user", content: 5 }] }), "messages[0].content"],
    [
      "bad content part",
      base({ messages: [{ role: "user", content: [{ text: "x" }] }] }),
      "messages[0].content[0]",
    ],
    [
      "tool message without id",
      base({ messages: [{ role: "tool", content: "r" }] }),
      "messages[0].tool_call_id",
    ],
    [
      "tool call without arguments",
      base({
        messages: [
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c", type: "function", function: { name: "f" } }],
          },
        ],
      }),
      "messages[0].tool_calls[0].function.arguments",
    ],
    ["n above the cap of 8", base({ n: 9 }), "n"],
    ["n zero", base({ n: 0 }), "n"],
    ["n fractional", base({ n: 1.5 }), "n"],
    ["temperature too high", base({ temperature: 2.5 }), "temperature"],
    ["temperature a string", base({ temperature: "1" }), "temperature"],
    ["top_p out of range", base({ top_p: -0.1 }), "top_p"],
    ["max_tokens zero", base({ max_tokens: 0 }), "max_tokens"],
    ["max_completion_tokens fractional", base({ max_completion_tokens: 1.5 }), "max_completion_tokens"],
    ["stop too many", base({ stop: ["a", "b", "c", "d", "e"] }), "stop"],
    ["seed not an integer", base({ seed: 1.2 }), "seed"],
    ["stream not a boolean", base({ stream: "yes" }), "stream"],
    ["stream_options without stream", base({ stream_options: { include_usage: true } }), "stream_options"],
    [
      "include_usage not a boolean",
      base({ stream: true, stream_options: { include_usage: 1 } }),
      "stream_options.include_usage",
    ],
    ["tools not an array", base({ tools: {} }), "tools"],
    [
      "tool bad name",
      base({ tools: [{ type: "function", function: { name: "a b" } }] }),
      "tools[0].function.name",
    ],
    ["tool wrong type", base({ tools: [{ type: "code", function: { name: "a" } }] }), "tools[0].type"],
    [
      "tool_choice unknown fn",
      base({
        tools: [{ type: "function", function: { name: "a" } }],
        tool_choice: { type: "function", function: { name: "b" } },
      }),
      "tool_choice",
    ],
    ["tool_choice required without tools", base({ tool_choice: "required" }), "tool_choice"],
    ["tool_choice garbage", base({ tool_choice: 3 }), "tool_choice"],
    ["response_format bad type", base({ response_format: { type: "xml" } }), "response_format.type"],
    [
      "json_schema without name",
      base({ response_format: { type: "json_schema", json_schema: {} } }),
      "response_format.json_schema",
    ],
    ["user not a string", base({ user: 42 }), "user"],
    ["deprecated functions", base({ functions: [] }), "functions"],
    ["logprobs not a boolean", base({ logprobs: "yes" }), "logprobs"],
    ["top_logprobs without logprobs", base({ top_logprobs: 2 }), "top_logprobs"],
    ["top_logprobs with logprobs false", base({ logprobs: false, top_logprobs: 0 }), "top_logprobs"],
    ["top_logprobs above 20", base({ logprobs: true, top_logprobs: 21 }), "top_logprobs"],
    ["top_logprobs negative", base({ logprobs: true, top_logprobs: -1 }), "top_logprobs"],
    ["top_logprobs not an integer", base({ logprobs: true, top_logprobs: 2.5 }), "top_logprobs"],
    ["forwarded field with bad shape", base({ logit_bias: { "1": "x" } }), "logit_bias"],
  ];
  for (const [name, body, param] of cases) {
    it(`refuses ${name} naming \`${param}\``, () => {
      const e = refused(body);
      expect(e.code).to.equal("invalid_request");
      expect(e.param).to.equal(param);
      expect(e.message).to.be.a("string").and.not.equal("");
    });
  }
});

describe("api request: translation", () => {
  it("maps every supported field onto ChatRequest", () => {
    const p = parseChatBody(
      {
        model: "llama",
        messages: [
          { role: "system", content: "be brief" },
          { role: "user", content: [{ type: "text", text: "hi" }], name: "bob" },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c1", type: "function", function: { name: "get", arguments: '{"a":1}' } }],
          },
          { role: "tool", tool_call_id: "c1", content: "42" },
        ],
        temperature: 0.5,
        top_p: 0.9,
        max_tokens: 100,
        max_completion_tokens: 50,
        stop: "END",
        seed: 7,
        frequency_penalty: 0.1,
        presence_penalty: -0.1,
        tools: [
          {
            type: "function",
            function: { name: "get", description: "d", parameters: { type: "object" }, strict: true },
          },
        ],
        tool_choice: { type: "function", function: { name: "get" } },
        parallel_tool_calls: false,
        response_format: { type: "json_schema", json_schema: { name: "s", schema: {} } },
        stream: true,
        stream_options: { include_usage: true },
        n: 1,
        user: "alice@example.com",
      },
      OPTS,
    );
    expect(p.model).to.equal("llama");
    expect(p.stream).to.equal(true);
    // The miner learns it too, so it can stream from its backend.
    expect(p.chat.stream).to.equal(true);
    expect(p.includeUsage).to.equal(true);
    const c = p.chat;
    expect(c.messages).to.have.length(4);
    expect(c.messages[0]).to.include({ role: "system", content: "be brief" });
    expect(c.messages[1]?.content).to.equal(undefined);
    expect(JSON.parse(c.messages[1]?.contentPartsJson ?? "")).to.deep.equal([{ type: "text", text: "hi" }]);
    expect(c.messages[1]?.name).to.equal("bob");
    expect(c.messages[2]?.content).to.equal(undefined);
    expect(c.messages[2]?.toolCalls).to.deep.equal([
      { id: "c1", type: "function", functionName: "get", functionArguments: '{"a":1}' },
    ]);
    expect(c.messages[3]?.toolCallId).to.equal("c1");
    expect(c.temperature).to.equal(0.5);
    expect(c.topP).to.equal(0.9);
    expect(c.maxTokens).to.equal(100);
    expect(c.maxCompletionTokens).to.equal(50);
    expect(c.n).to.equal(1);
    expect(c.stop).to.deep.equal(["END"]);
    expect(c.seed).to.equal(7n);
    expect(c.frequencyPenalty).to.equal(0.1);
    expect(c.presencePenalty).to.equal(-0.1);
    expect(c.tools).to.deep.equal([
      { type: "function", name: "get", description: "d", parametersJson: '{"type":"object"}', strict: true },
    ]);
    expect(c.toolChoice).to.deep.equal({ choice: { $case: "functionName", value: "get" } });
    expect(c.parallelToolCalls).to.equal(false);
    expect(c.responseFormat?.type).to.equal("json_schema");
    expect(JSON.parse(c.responseFormat?.jsonSchemaJson ?? "")).to.deep.equal({ name: "s", schema: {} });
    expect(c.user).to.equal(hashUser("alice@example.com", "key1", "salt"));
    expect(c.user).not.to.contain("alice");
    expect(p.prompt.messages).to.equal(4);
    expect(p.prompt.bytes).to.be.greaterThan("be brief".length + "42".length);
  });

  it("maps logprobs and top_logprobs as given, and leaves them unset when absent", () => {
    const asked = parseChatBody(base({ logprobs: true, top_logprobs: 20 }), OPTS).chat;
    expect(asked).to.include({ logprobs: true, topLogprobs: 20 });
    const bare = parseChatBody(base({ logprobs: true }), OPTS).chat;
    expect(bare).to.include({ logprobs: true, topLogprobs: undefined });
    const declined = parseChatBody(base({ logprobs: false }), OPTS).chat;
    expect(declined).to.include({ logprobs: false, topLogprobs: undefined });
    const absent = parseChatBody(base(), OPTS).chat;
    expect(absent).to.include({ logprobs: undefined, topLogprobs: undefined });
    // They travel as fields of their own, never through extra_json.
    expect(asked.extraJson).to.equal("");
  });

  it("passes max_tokens and max_completion_tokens as sent, injecting neither", () => {
    expect(parseChatBody(base(), OPTS).chat).to.include({
      maxTokens: undefined,
      maxCompletionTokens: undefined,
    });
    expect(parseChatBody(base({ max_tokens: 9 }), OPTS).chat).to.include({
      maxTokens: 9,
      maxCompletionTokens: undefined,
    });
    expect(parseChatBody(base({ max_completion_tokens: 7 }), OPTS).chat).to.include({
      maxTokens: undefined,
      maxCompletionTokens: 7,
    });
  });

  it("passes n as sent (1 to 8), absent when not sent", () => {
    expect(parseChatBody(base(), OPTS).chat.n).to.equal(undefined);
    expect(parseChatBody(base({ n: 8 }), OPTS).chat.n).to.equal(8);
    expect(refused(base({ n: 9 })).message).to.contain("8");
  });

  it("salts the user hash by account and by router secret", () => {
    const a = hashUser("u", "k1", "s");
    expect(hashUser("u", "k2", "s")).not.to.equal(a);
    expect(hashUser("u", "k1", "t")).not.to.equal(a);
    expect(hashUser("u", "k1", "s")).to.equal(a);
  });

  it("forwards only known-safe extra fields in extra_json", () => {
    const p = parseChatBody(
      base({ logit_bias: { "50256": -100 }, top_k: 40, metadata: { email: "x@y" }, store: true, made_up: 1 }),
      OPTS,
    );
    expect(JSON.parse(p.chat.extraJson)).to.deep.equal({ logit_bias: { "50256": -100 }, top_k: 40 });
    expect(parseChatBody(base(), OPTS).chat.extraJson).to.equal("");
  });

  it("refuses absurdly nested JSON with a 400 naming the field, not a crash", () => {
    const depth = 200_000;
    const deep = JSON.parse(`{"a":${"[".repeat(depth)}${"]".repeat(depth)}}`) as unknown;
    const e = refused(base({ tools: [{ type: "function", function: { name: "f", parameters: deep } }] }));
    expect(e.param).to.equal("tools[0].function.parameters");
  });

  it("treats explicit nulls as absent", () => {
    const p = parseChatBody(
      base({
        temperature: null,
        stop: null,
        tools: null,
        n: null,
        stream: null,
        user: null,
        logprobs: false,
      }),
      OPTS,
    );
    expect(p.chat.temperature).to.equal(undefined);
    expect(p.chat.stop).to.deep.equal([]);
    expect(p.stream).to.equal(false);
    expect(p.chat.stream).to.equal(false);
    expect(p.chat.user).to.equal("");
  });

  it("counts prompt bytes in UTF-8", () => {
    const ascii = parseChatBody(base({ messages: [{ role: "user", content: "aaaa" }] }), OPTS).prompt.bytes;
    const wide = parseChatBody(base({ messages: [{ role: "user", content: "éééé" }] }), OPTS).prompt.bytes;
    expect(wide - ascii).to.equal(4);
  });
});
