// The router counts every chat prompt itself (the bound on a miner's claimed
// usage). A conversation resends its earlier messages every turn, so the chat
// endpoint remembers long messages' counts per API key (TokenCountMemo): a
// second turn is credited exactly what a fresh count gives, and one key's
// conversation is never answered from another key's entries.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI from "openai";
import { TokenCountMemo } from "../../common/tokens/count-memo.js";
import { DEFAULT_ENCODING, Encodings } from "../../common/tokens/encodings.js";
import { countPromptTokens } from "../../common/tokens/prompt.js";
import { ChatRequest } from "../../gen/tensorclaw/v1/chat.js";
import { type ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { PER_MESSAGE_ALLOWANCE, PER_REQUEST_ALLOWANCE } from "../../router/usage/clamp.js";
import { type MinerProcess, type RouterUnderTest, startMiner, startRouter } from "../support/api-harness.js";
import { type OpenAIBackend, startOpenAIBackend } from "../support/openai-backend.js";

const MODEL = "test-model";
type Message = OpenAI.Chat.Completions.ChatCompletionMessageParam;

describe("chat prompt counts remembered per API key", function () {
  this.timeout(30_000);
  let dir: string;
  let memo: TokenCountMemo;
  let router: RouterUnderTest;
  let backend: OpenAIBackend;
  let miner: MinerProcess;
  let count: (t: string) => number;
  const clients: Record<"alice" | "bob", OpenAI> = {} as Record<"alice" | "bob", OpenAI>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "tc-memo-keys-"));
    memo = new TokenCountMemo();
    router = await startRouter({ keyStore: new FileApiKeyStore(join(dir, "keys.json")), promptCounts: memo });
    backend = await startOpenAIBackend({ models: [MODEL] });
    miner = await startMiner(router, backend.url);
    for (const name of ["alice", "bob"] as const) {
      const { key } = await (router.keys as ApiKeys).create(
        name,
        { requestsPerMinute: 1000, tokensPerMinute: 10_000_000 },
        Date.now(),
      );
      clients[name] = new OpenAI({ apiKey: key, baseURL: router.baseURL, maxRetries: 0 });
    }
    count = await new Encodings().load(DEFAULT_ENCODING);
  });
  after(async () => {
    await miner?.kill();
    await router?.close();
    await backend?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What the router must credit for `messages` at most: its own fresh count plus the allowances. */
  function bound(messages: Message[]): number {
    const chat = ChatRequest.fromPartial({
      messages: messages.map((m) => ({ role: m.role, content: m.content as string })),
    });
    return countPromptTokens(chat, count) + PER_MESSAGE_ALLOWANCE * messages.length + PER_REQUEST_ALLOWANCE;
  }

  /** One turn whose backend claims 20× the real usage, so the credit is the router's bound. */
  async function turn(who: "alice" | "bob", history: Message[], question: string) {
    const messages: Message[] = [
      ...history,
      { role: "user", content: `[[backend tokens=5 inflate=20]] ${question}` },
    ];
    const r = await clients[who].chat.completions.create({ model: MODEL, messages });
    return { messages, answer: r.choices[0]?.message.content ?? "", promptTokens: r.usage?.prompt_tokens };
  }

  it("credits a conversation's second turn what a fresh count gives, with its earlier long messages remembered", async () => {
    const document = `Here is the contract to review. ${"Clause: the supplier shall deliver on time. ".repeat(300)}`;
    const first = await turn("alice", [{ role: "system", content: document }], "Summarise it.");
    expect(first.promptTokens).to.equal(bound(first.messages));
    const hitsAfterFirst = memo.stats().hits;

    const history: Message[] = [...first.messages, { role: "assistant", content: first.answer }];
    const second = await turn("alice", history, "And the penalties?");
    expect(second.promptTokens).to.equal(bound(second.messages));
    // The document (and the first question's long text, if any) came from the memo this time.
    expect(memo.stats().hits).to.be.greaterThan(hitsAfterFirst);
  });

  it("does not answer another key from alice's entries: bob's identical document is counted afresh", async () => {
    const document = `A shared template everyone pastes. ${"Section: keep the data private. ".repeat(200)}`;
    await turn("alice", [{ role: "system", content: document }], "Check it.");
    const { hits, misses } = memo.stats();
    const bobs = await turn("bob", [{ role: "system", content: document }], "Check it.");
    expect(bobs.promptTokens).to.equal(bound(bobs.messages));
    expect(memo.stats().hits).to.equal(hits);
    expect(memo.stats().misses).to.be.greaterThan(misses);
  });
});
