import { expect } from "chai";
import { promptBytesOf, promptTokensFromBytes, promptTokensLog2 } from "../../common/request-shape.js";
import { PHRASEBOOKS } from "../../validator/probe-gen/prompt-languages.js";
import {
  type ChatMessageJson,
  generateConversation,
  promptSpaceLowerBound,
} from "../../validator/probe-gen/prompt-space.js";
import { CLOSERS, OPENERS, TASK_COUNTS } from "../../validator/probe-gen/prompt-tasks.js";
import { TOOLS } from "../../validator/probe-gen/prompt-tools.js";
import { TOPICS } from "../../validator/probe-gen/prompt-topics.js";
import { drawProbeBody } from "../../validator/probe-gen/shape-sampler.js";
import { seededRandom } from "../support/api-random.js";

const log2Of = (messages: ChatMessageJson[], extra = 0) =>
  promptTokensLog2(promptTokensFromBytes(promptBytesOf({ messages }) + extra));

describe("probe-gen: built-in prompt space", () => {
  it("has at least 10^6 distinct requests in its simplest corner alone, counted from its parts", () => {
    // The parts multiplied must each be distinct, or the product overcounts.
    expect(new Set(TOPICS.map((t) => t.name)).size).to.equal(TOPICS.length);
    expect(new Set(OPENERS).size).to.equal(OPENERS.length);
    expect(new Set(CLOSERS).size).to.equal(CLOSERS.length);
    const c = TASK_COUNTS;
    const counted = c.openers * c.closers * (c.topicPhrasings * TOPICS.length + c.codeRequests);
    expect(promptSpaceLowerBound()).to.equal(counted);
    expect(counted).to.be.at.least(1_000_000);
  });

  it("10,000 probes drawn with the default shape mix are nearly all distinct", () => {
    const random = seededRandom(15);
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++)
      seen.add(JSON.stringify(drawProbeBody({ model: "m", random }).body.messages));
    expect(seen.size).to.be.at.least(9_900);
  });

  it("10,000 lone English requests of natural length are nearly all distinct", () => {
    const random = seededRandom(16);
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      seen.add(
        JSON.stringify(
          generateConversation(random, { messages: 1, systemPrompt: false, otherLanguageShare: 0 }),
        ),
      );
    }
    expect(seen.size).to.be.at.least(9_800);
  });

  it("is deterministic for a seeded random source, and differs between seeds", () => {
    const spec = { messages: 5, systemPrompt: true, promptTokens: 700, tools: TOOLS.slice(0, 3) };
    const a = generateConversation(seededRandom(7), spec);
    expect(generateConversation(seededRandom(7), spec)).to.deep.equal(a);
    expect(generateConversation(seededRandom(8), spec)).to.not.deep.equal(a);
  });

  it("writes exactly the messages asked for, system prompt first when asked, ending on the user", () => {
    const random = seededRandom(21);
    for (let n = 1; n <= 64; n++) {
      for (const systemPrompt of [false, true]) {
        const m = generateConversation(random, {
          messages: n,
          systemPrompt,
          tools: n % 3 === 0 ? TOOLS : [],
        });
        expect(m, `${n} ${systemPrompt}`).to.have.length(n);
        expect(m[0]?.role === "system", `${n} ${systemPrompt}`).to.equal(systemPrompt);
        const last = m[m.length - 1];
        expect(last?.role).to.equal(n === 1 && systemPrompt ? "system" : "user");
        for (const [i, msg] of m.entries()) {
          if (i > 0) expect(msg.role).to.not.equal("system");
          if (msg.role === "tool") {
            // A tool result answers the call right before it.
            const call = (m[i - 1]?.tool_calls as { id: string }[] | undefined)?.[0];
            expect(call?.id).to.equal(msg.tool_call_id);
          } else if (msg.tool_calls === undefined) {
            expect(msg.content).to.be.a("string").and.not.equal("");
          }
          // No two user (or assistant text) turns in a row.
          const prev = m[i - 1];
          if (prev !== undefined && prev.role === msg.role && msg.role !== "tool") {
            expect.fail(`two ${msg.role} messages in a row at ${i}`);
          }
        }
      }
    }
  });

  it("lands prompts in the power-of-two token bucket asked for", () => {
    const random = seededRandom(31);
    for (const [messages, systemPrompt, from] of [
      [1, false, 6],
      [2, true, 7],
      [5, true, 9],
    ] as const) {
      for (let b = from; b <= 14; b++) {
        let hits = 0;
        for (let i = 0; i < 40; i++) {
          const target = 2 ** (b - 1) + 1 + Math.floor(random() * 2 ** (b - 1));
          const m = generateConversation(random, {
            messages,
            systemPrompt,
            promptTokens: target,
            extraBytes: 100,
          });
          if (log2Of(m, 100) === b) hits++;
        }
        expect(hits, `${messages} messages, 2^${b} tokens`).to.be.at.least(34);
      }
    }
  });

  it("writes tiny prompts for tiny targets, and long ones for long targets", () => {
    const random = seededRandom(41);
    const tiny = generateConversation(random, { messages: 1, systemPrompt: false, promptTokens: 6 });
    expect(log2Of(tiny)).to.be.at.most(3);
    const long = generateConversation(random, { messages: 1, systemPrompt: false, promptTokens: 20_000 });
    expect(log2Of(long)).to.equal(15);
  });

  it("writes in other languages, with their article contractions applied", () => {
    const random = seededRandom(51);
    const stems = PHRASEBOOKS.flatMap((pb) => pb.topics.map((t) => t.split(" ").slice(-1)[0] as string));
    let english = 0;
    for (let i = 0; i < 400; i++) {
      const m = generateConversation(random, { messages: 3, systemPrompt: true, otherLanguageShare: 1 });
      const text = m.map((x) => String(x.content)).join("\n");
      expect(
        stems.some((s) => text.includes(s)),
        text,
      ).to.equal(true);
      expect(text).to.not.match(/\b(de le|de les|de el|em o|de o|su il|di il|su l'|di la)\b/);
      if (TOPICS.some((t) => text.includes(t.name))) english++;
    }
    expect(english).to.equal(0);
    // The default share leaves most conversations in English.
    let other = 0;
    for (let i = 0; i < 1000; i++) {
      const m = generateConversation(random, { messages: 1, systemPrompt: false, promptTokens: 60 });
      const text = String(m[0]?.content);
      if (PHRASEBOOKS.some((pb) => pb.topics.some((t) => text.includes(t.split(" ").slice(-1)[0] as string))))
        other++;
    }
    expect(other).to.be.within(150, 300);
  });

  it("asks for JSON in the last user message when told to", () => {
    const m = generateConversation(seededRandom(61), {
      messages: 3,
      systemPrompt: false,
      jsonAsk: "Respond in JSON.",
      otherLanguageShare: 0,
    });
    expect(String(m[2]?.content)).to.match(/Respond in JSON\.$/);
  });
});
