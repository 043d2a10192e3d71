import { expect } from "chai";
import { loadDemoModel } from "../../common/demo-model/model.js";
import { CompletionRequest } from "../../gen/tensorclaw/v1/chat.js";
import type { BackendEvent } from "../../miner/backend/backend.js";
import { demoCompletion } from "../../miner/backend/demo-completion.js";
import { completionRequestBody, eventsFromTextCompletion } from "../../miner/backend/openai-completions.js";

describe("miner completions", () => {
  it("posts OpenAI's field names, omitting what was not asked", () => {
    const req = CompletionRequest.fromPartial({ prompt: ["a"], stream: true, n: 2, seed: 5n, echo: true });
    expect(completionRequestBody("m", req)).to.deep.equal({
      model: "m",
      prompt: "a",
      stream: true,
      stream_options: { include_usage: true },
      n: 2,
      echo: true,
      seed: 5,
    });
  });

  it("maps text_completion choices to deltas by index, legacy logprobs included, then usage", () => {
    const events = eventsFromTextCompletion(
      {
        choices: [
          {
            index: 3,
            text: "hi",
            finish_reason: "length",
            logprobs: { tokens: ["hi"], token_logprobs: [null], top_logprobs: [{ hi: -0.5, ho: -1 }] },
          },
        ],
        usage: { prompt_tokens: 2, completion_tokens: 1 },
      },
      1,
    );
    expect(events).to.deep.equal([
      {
        type: "delta",
        content: "hi",
        reasoning: "",
        toolCalls: [],
        finishReason: 2,
        choiceIndex: 3,
        logprobs: [
          { token: "hi", logprob: Number.NEGATIVE_INFINITY, topLogprobs: [{ token: "hi", logprob: -0.5 }] },
        ],
      },
      { type: "usage", promptTokens: 2, completionTokens: 1 },
    ]);
  });

  it("the demo completes each prompt n times (choice = prompt × n + sample), echoing the prompt, with usage", async () => {
    const model = await loadDemoModel();
    const req = CompletionRequest.fromPartial({
      prompt: ["The sea", "Bread"],
      n: 2,
      maxTokens: 3,
      seed: 1n,
      echo: true,
    });
    const events: BackendEvent[] = [];
    for await (const e of demoCompletion(model, req, {
      answerTokens: 256,
      contextLength: 8192,
      pause: async () => {},
    })) {
      events.push(e);
    }
    const text = ["", "", "", ""];
    for (const e of events) if (e.type === "delta") text[e.choiceIndex ?? 0] += e.content;
    const prompts = ["The sea", "The sea", "Bread", "Bread"];
    expect(
      text.map((t, i) => t.startsWith(prompts[i] as string) && t.length > (prompts[i] as string).length),
    ).to.deep.equal([true, true, true, true]);
    const usage = events.at(-1);
    expect(usage?.type).to.equal("usage");
    if (usage?.type === "usage") expect(usage.completionTokens).to.be.within(4, 12);
  });
});
