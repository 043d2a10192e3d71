import { expect } from "chai";
import { demoEmbedding } from "../../common/demo-model/embedding.js";
import { silentLogger } from "../../common/logger.js";
import { kindToProto, type ModelKind } from "../../common/request-kinds.js";
import { RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { parseProbeBody } from "../../router/services/probe-body.js";
import { probeBody } from "../../router/services/probe-kinds.js";
import {
  cosine,
  judgeEmbeddingAgreement,
  judgeEmbeddingsByReference,
  type VectorSet,
  vectorSetSimilarity,
} from "../../validator/audit/embedding-judge.js";
import { embeddingInputsOf } from "../../validator/audit/probe-forms.js";
import { type AuditAnswer, type AuditCase, AuditCases } from "../../validator/audit-cases.js";
import { judgeCase, type ReferenceJudging } from "../../validator/audit-judge.js";
import { Prober } from "../../validator/prober.js";
import { seededRandom } from "../support/api-random.js";
import { okProbe, session } from "../support/validator-router.js";

const TEXTS = ["Tides follow the moon.", "A recipe for bread needs flour, water and salt."];
const honest = (): number[][] => TEXTS.map((t) => demoEmbedding(t));

/** `v` moved a little in every value, as another GPU or precision moves it (cosine about 0.999). */
function jitter(v: readonly number[], random: () => number, size = 0.01): number[] {
  return v.map((x) => x + (random() - 0.5) * size);
}

function randomVector(random: () => number, n = 256): number[] {
  return Array.from({ length: n }, () => random() - 0.5);
}

const byHotkey = (records: { hotkey: string; outcome: string }[]) =>
  Object.fromEntries(records.map((r) => [r.hotkey, r.outcome]));

describe("validator: judging embeddings audits", () => {
  const random = seededRandom(5);

  it("compares vector sets input by input, by their lowest cosine", () => {
    expect(cosine([1, 0], [0, 1])).to.equal(0);
    expect(cosine([3, 4], [6, 8])).to.be.closeTo(1, 1e-12);
    expect(cosine([1, 0], [1, 0, 0])).to.be.NaN;
    expect(cosine([0, 0], [1, 0])).to.be.NaN;
    const h = honest();
    expect(vectorSetSimilarity(h, h)).to.be.closeTo(1, 1e-12);
    // One input filled with anything sinks the whole answer: no hiding it in an average.
    expect(vectorSetSimilarity(h, [h[0] as number[], randomVector(random)])).to.be.below(0.3);
    expect(vectorSetSimilarity(h, [h[0] as number[]]), "fewer vectors").to.equal(0);
    expect(vectorSetSimilarity(h, [h[0] as number[], [1, 0]]), "another length").to.equal(0);
    expect(
      vectorSetSimilarity(
        h,
        h.map((v) => v.map((x) => -x)),
      ),
      "opposite",
    ).to.equal(0);
  });

  it("against a reference: passes the same model's vectors, fails others, and says why", () => {
    const ref = honest();
    const same = judgeEmbeddingsByReference(
      ref.map((v) => jitter(v, random)),
      ref,
    );
    expect(same.outcome).to.equal("passed");
    expect(same.detail).to.match(/^lowest cosine to the reference 0\.99\d over 2 inputs$/);
    const other = judgeEmbeddingsByReference([randomVector(random), randomVector(random)], ref);
    expect(other.outcome).to.equal("failed");
    expect(other.detail).to.match(/< 0\.900$/);
    // Words hashed some other way: shaped right, pointing elsewhere.
    const hashed = TEXTS.map((t) => demoEmbedding(t.toUpperCase().split("").reverse().join("")));
    expect(judgeEmbeddingsByReference(hashed, ref).outcome).to.equal("failed");
    expect(judgeEmbeddingsByReference([ref[0] as number[]], ref)).to.deep.equal({
      outcome: "failed",
      detail: "1 vectors for 2 inputs",
    });
    expect(
      judgeEmbeddingsByReference(
        [
          [1, 0, 0],
          [0, 1, 0],
        ],
        ref,
      ),
    ).to.deep.equal({
      outcome: "failed",
      detail: "3 dimensions, the reference's 256",
    });
    // Close but not the same weights (quantised, say): no verdict either way.
    const near = ref.map((v) => jitter(v, random, 0.06));
    const nearLow = vectorSetSimilarity(near, ref);
    expect(nearLow).to.be.within(0.9, 0.98);
    expect(judgeEmbeddingsByReference(near, ref).outcome).to.equal("unverifiable");
  });

  it("by agreement: fails the miner whose vectors the others do not share, passes the rest", () => {
    const h = honest();
    const peers = [
      { hotkey: "A", vectors: h },
      { hotkey: "B", vectors: h.map((v) => jitter(v, random)) },
      { hotkey: "C", vectors: h.map((v) => jitter(v, random)) },
      { hotkey: "F", vectors: [randomVector(random), randomVector(random)] },
    ];
    const judged = judgeEmbeddingAgreement(peers);
    expect(Object.fromEntries([...judged].map(([hk, j]) => [hk, j.outcome]))).to.deep.equal({
      A: "passed",
      B: "passed",
      C: "passed",
      F: "failed",
    });
    expect(judged.get("F")?.detail).to.match(
      /^far from the other answers: agreement 0\.\d\d, consensus (0\.99|1\.00) of 4 answers$/,
    );
    // Two miners cannot judge each other; nobody agreeing means no verdict.
    expect(judgeEmbeddingAgreement(peers.slice(0, 2)).get("A")?.outcome).to.equal("unverifiable");
    const strangers = ["A", "B", "C"].map((hotkey) => ({
      hotkey,
      vectors: [randomVector(random), randomVector(random)] as VectorSet,
    }));
    for (const j of judgeEmbeddingAgreement(strangers).values()) {
      expect(j.outcome).to.equal("unverifiable");
      expect(j.detail).to.match(/^no consensus/);
    }
  });

  it("reads a probe body's inputs exactly as the router turns it into an embeddings request", () => {
    const body = {
      messages: [
        { role: "system", content: "You summarise." },
        {
          role: "user",
          content: [
            { type: "text", text: "First part." },
            { type: "text", text: "Second." },
          ],
        },
        { role: "assistant", content: "" },
        { role: "user", content: "Last one." },
      ],
      temperature: 0,
      seed: 3,
    };
    const rules = { requestTimeoutMs: 60_000, userSalt: "s", maxBodyBytes: 1 << 20 };
    const routed = probeBody(parseProbeBody(JSON.stringify(body), "5V", rules).chat, "embedding");
    if (!("embedding" in routed)) throw new Error("not an embeddings request");
    expect(embeddingInputsOf(body.messages)).to.deep.equal(routed.embedding.input);
    expect(embeddingInputsOf(body.messages)).to.deep.equal([
      "You summarise.",
      "First part.\nSecond.",
      "Last one.",
    ]);
    const empty = probeBody(
      parseProbeBody(JSON.stringify({ messages: [{ role: "user", content: "" }] }), "5V", rules).chat,
      "embedding",
    );
    expect(embeddingInputsOf([{ role: "user", content: "" }])).to.deep.equal(
      "embedding" in empty ? empty.embedding.input : undefined,
    );
  });

  /**
   * `n` probes of miner 5A, every one an audit, offering model "e" as
   * `kinds`; the router answers each as `wentAs`, by default the kind asked.
   */
  async function auditRounds(kinds: RequestKind[], n: number, seed: number, wentAs?: RequestKind) {
    const cases = new AuditCases({ maxAgeMs: 60_000, pendingTimeoutMs: 60_000, alone: () => true });
    const asked: (ModelKind | undefined)[] = [];
    const prober = new Prober({
      router: {
        probe: async (_hk, opts) => {
          asked.push(opts.kind);
          const kind =
            wentAs ??
            (opts.kind === undefined ? RequestKind.REQUEST_KIND_UNSPECIFIED : kindToProto(opts.kind));
          return { kind: "probed", response: { ...okProbe(10), cut: false, kind } };
        },
      },
      cases,
      settings: { verifyShare: 1, livenessTimeoutMs: 1000, auditTimeoutMs: 1000, userPool: ["user-1"] },
      random: seededRandom(seed),
      clock: () => 0,
      logger: silentLogger(),
    });
    const sessions = [
      session("5A", { models: [{ id: "e", maxConcurrency: 4, contextLength: 0, inFlight: 0, kinds }] }),
    ];
    for (let i = 0; i < n; i++) await prober.probe("5A", sessions);
    return { asked, cases: cases.open };
  }

  it("draws embeddings audits without graded prompts, whose text only audits carry", async () => {
    const { cases: embedding } = await auditRounds([RequestKind.REQUEST_KIND_EMBEDDING], 40, 9);
    expect(embedding).to.have.length(40);
    expect(embedding.every((c) => c.kind === "embedding" && c.graded === undefined)).to.equal(true);
    // The same draws for a chat model do carry some (a quarter by default).
    const { cases: chat } = await auditRounds([RequestKind.REQUEST_KIND_CHAT], 40, 9);
    expect(chat.filter((c) => c.kind === "chat" && c.graded !== undefined).length).to.be.greaterThan(0);
  });

  it("judges an audit only as the kind it went as; a router that predates kinds sent its default", async () => {
    const judgedKinds = async (wentAs: RequestKind, kinds: RequestKind[]) => {
      const r = await auditRounds(kinds, 20, 4, wentAs);
      return {
        asked: new Set(r.asked),
        kinds: new Set(r.cases.filter((c) => c.answers.size > 0).map((c) => c.kind)),
      };
    };
    const both = [RequestKind.REQUEST_KIND_CHAT, RequestKind.REQUEST_KIND_EMBEDDING];
    const newer = await judgedKinds(RequestKind.REQUEST_KIND_EMBEDDING, both);
    expect(newer.asked).to.deep.equal(new Set(["chat", "embedding"]));
    // Only the audits that asked for vectors kept an answer; the chat ones went as something else.
    expect(newer.kinds).to.deep.equal(new Set(["embedding"]));
    // An older router reports no kind: it sent its default, chat, so only chat audits are judged.
    expect((await judgedKinds(RequestKind.REQUEST_KIND_UNSPECIFIED, both)).kinds).to.deep.equal(
      new Set(["chat"]),
    );
    // For an embeddings-only model its default is embeddings.
    const embedOnly = await judgedKinds(RequestKind.REQUEST_KIND_UNSPECIFIED, [
      RequestKind.REQUEST_KIND_EMBEDDING,
    ]);
    expect(embedOnly.kinds).to.deep.equal(new Set(["embedding"]));
  });

  describe("an embeddings audit case", () => {
    const body = { messages: TEXTS.map((content) => ({ role: "user", content })) };
    const answer = (hotkey: string, vectors: number[][], ok = true): [string, AuditAnswer] => [
      hotkey,
      { hotkey, ok, content: "", logprobs: [], vectors, atMs: 1 },
    ];
    const auditCase = (answers: [string, AuditAnswer][]): AuditCase => ({
      id: 1,
      model: "e",
      kind: "embedding",
      body,
      graded: undefined,
      openedAtMs: 0,
      pending: new Set(),
      answers: new Map(answers),
    });
    const chatOnly: ReferenceJudging = {
      judge: async () => ({ outcome: "passed", detail: "" }),
      answer: async () => "",
    };

    it("is judged by agreement without a reference; a clean answer without vectors is unverifiable", async () => {
      const h = honest();
      const records = await judgeCase(
        auditCase([
          answer("A", h),
          answer("B", h),
          answer(
            "C",
            h.map((v) => jitter(v, random)),
          ),
          answer("F", [randomVector(random), randomVector(random)]),
          answer("X", []),
          answer("G", [randomVector(random), randomVector(random)], false),
        ]),
        undefined,
        7,
      );
      expect(byHotkey(records)).to.deep.equal({
        X: "unverifiable",
        A: "passed",
        B: "passed",
        C: "passed",
        F: "failed",
      });
      expect(records.find((r) => r.hotkey === "X")?.detail).to.equal("no vectors");
      expect(records.every((r) => r.judge === "agreement" && r.model === "e" && r.atMs === 7)).to.equal(true);
    });

    it("is judged against the reference's vectors for the router's inputs when there is one", async () => {
      const asked: (readonly string[])[] = [];
      const reference: ReferenceJudging = {
        ...chatOnly,
        embed: async (inputs) => {
          asked.push(inputs);
          return inputs.map((t) => demoEmbedding(t));
        },
      };
      const records = await judgeCase(
        auditCase([answer("A", honest()), answer("F", [randomVector(random), randomVector(random)])]),
        reference,
        7,
      );
      expect(asked).to.deep.equal([TEXTS]);
      expect(byHotkey(records)).to.deep.equal({ A: "passed", F: "failed" });
      expect(records.every((r) => r.judge === "reference")).to.equal(true);
    });

    it("is unverifiable, never failed, when the reference cannot embed or fails", async () => {
      const cases = [
        { reference: chatOnly, detail: "the reference serves no embeddings" },
        {
          reference: {
            ...chatOnly,
            embed: async () => {
              throw new Error("HTTP 503");
            },
          },
          detail: "reference failed: HTTP 503",
        },
      ];
      for (const { reference, detail } of cases) {
        const records = await judgeCase(
          auditCase([answer("F", [randomVector(random), randomVector(random)])]),
          reference,
          7,
        );
        expect(records).to.deep.equal([
          {
            atMs: 7,
            hotkey: "F",
            model: "e",
            outcome: "unverifiable",
            judge: "reference",
            detail,
            kind: "embedding",
          },
        ]);
      }
    });
  });
});
