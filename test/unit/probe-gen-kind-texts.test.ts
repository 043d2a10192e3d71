import { expect } from "chai";
import { silentLogger } from "../../common/logger.js";
import { kindToProto, type ModelKind } from "../../common/request-kinds.js";
import { RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { parseProbeBody } from "../../router/services/probe-body.js";
import { probeBody } from "../../router/services/probe-kinds.js";
import { AuditCases } from "../../validator/audit-cases.js";
import { ProbeCorpus } from "../../validator/probe-gen/corpus.js";
import {
  completionProbeMessages,
  embeddingProbeMessages,
  MAX_EMBEDDING_PROBE_INPUTS,
} from "../../validator/probe-gen/kind-texts.js";
import { Prober } from "../../validator/prober.js";
import { seededRandom } from "../support/api-random.js";
import { okProbe, session } from "../support/validator-router.js";

/** What chat probes say that nobody embeds or asks a model to continue. */
const CHATTY = /\b(you are|please|can you|could you|assistant)\b/i;

const textsOf = (messages: Record<string, unknown>[]) => messages.map((m) => m.content as string);

describe("probe generator: words for embeddings and completion probes", () => {
  it("embeds a query or a batch of passages about one topic, never chat instructions", () => {
    const random = seededRandom(21);
    const counts: number[] = [];
    for (let i = 0; i < 300; i++) {
      const messages = embeddingProbeMessages(random);
      counts.push(messages.length);
      expect(messages.every((m) => m.role === "user")).to.equal(true);
      for (const t of textsOf(messages)) {
        expect(t.trim()).to.not.equal("");
        expect(t).to.not.match(CHATTY);
      }
    }
    expect(Math.min(...counts)).to.equal(1);
    expect(Math.max(...counts)).to.be.at.most(MAX_EMBEDDING_PROBE_INPUTS);
    const single = counts.filter((n) => n === 1).length / counts.length;
    expect(single).to.be.within(0.35, 0.55);
    expect(counts.some((n) => n > 8)).to.equal(true);
  });

  it("embeds an operator corpus's user and assistant texts, not its system prompts", () => {
    const corpus = ProbeCorpus.parse(
      [
        {
          messages: [
            { role: "system", content: "You are terse." },
            { role: "user", content: "Index this note." },
          ],
        },
        {
          messages: [
            { role: "user", content: "Lunch at noon?" },
            { role: "assistant", content: "Yes, at noon." },
          ],
        },
      ]
        .map((b) => JSON.stringify(b))
        .join("\n"),
      "test",
    );
    const random = seededRandom(3);
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) for (const t of textsOf(embeddingProbeMessages(random, corpus))) seen.add(t);
    expect(seen).to.deep.equal(new Set(["Index this note.", "Lunch at noon?", "Yes, at noon."]));
  });

  it("asks a completion to continue a passage cut mid-sentence, or a Q/A prompt", () => {
    const random = seededRandom(8);
    let qa = 0;
    for (let i = 0; i < 200; i++) {
      const messages = completionProbeMessages(random);
      expect(messages).to.have.length(1);
      const text = textsOf(messages)[0] as string;
      expect(text).to.not.match(CHATTY);
      if (text.startsWith("Q: ")) {
        qa++;
        expect(text).to.match(/\nA:$/);
      } else {
        // Left open for the model: the text does not end a sentence.
        expect(text).to.not.match(/[.!?]$/);
      }
    }
    expect(qa).to.be.within(40, 80);
  });

  it("is what the prober sends for those kinds, and what the router turns into the kind's request", async () => {
    const sent: { kind: ModelKind | undefined; body: Record<string, unknown> }[] = [];
    const prober = new Prober({
      router: {
        probe: async (_hk, opts) => {
          sent.push({ kind: opts.kind, body: opts.body });
          const kind =
            opts.kind === undefined ? RequestKind.REQUEST_KIND_UNSPECIFIED : kindToProto(opts.kind);
          return { kind: "probed", response: { ...okProbe(10), kind } };
        },
      },
      cases: new AuditCases({ maxAgeMs: 60_000, pendingTimeoutMs: 60_000 }),
      settings: { verifyShare: 0.2, livenessTimeoutMs: 1000, auditTimeoutMs: 1000, userPool: ["user-1"] },
      random: seededRandom(12),
      clock: () => 0,
      logger: silentLogger(),
    });
    const kinds = [
      RequestKind.REQUEST_KIND_CHAT,
      RequestKind.REQUEST_KIND_COMPLETION,
      RequestKind.REQUEST_KIND_EMBEDDING,
    ];
    const sessions = [
      session("5A", { models: [{ id: "m", maxConcurrency: 4, contextLength: 0, inFlight: 0, kinds }] }),
    ];
    for (let i = 0; i < 60; i++) await prober.probe("5A", sessions);
    const rules = { requestTimeoutMs: 60_000, userSalt: "s", maxBodyBytes: 1 << 20 };
    const as = (k: ModelKind) => sent.filter((s) => s.kind === k);
    expect(
      as("chat").some((s) => (s.body.messages as Record<string, unknown>[])[0]?.role === "system"),
    ).to.equal(true);
    for (const s of as("embedding")) {
      const routed = probeBody(parseProbeBody(JSON.stringify(s.body), "5V", rules).chat, "embedding");
      if (!("embedding" in routed)) throw new Error("not embeddings");
      for (const input of routed.embedding.input) expect(input).to.not.match(CHATTY);
    }
    for (const s of as("completion")) {
      const routed = probeBody(parseProbeBody(JSON.stringify(s.body), "5V", rules).chat, "completion");
      if (!("completion" in routed)) throw new Error("not a completion");
      expect(routed.completion.prompt[0]).to.not.match(CHATTY);
    }
    expect(as("embedding").length).to.be.greaterThan(5);
    expect(as("completion").length).to.be.greaterThan(5);
  });
});
