// Models that serve no chat are audited like chat ones, as the kind the
// router probes them as. A miner that serves an embedding model is paid for
// the prompt tokens it embeds, so one that returns vectors of no model
// (random, or a hash of the words) must be caught like a chat miner that
// serves filler; and a miner must not dodge audits by offering its model for
// text completions only. The validator judges what its probes bring back:
// against the reference (here the demo model server, over HTTP) or by the
// agreement of the miners asked the same. The router is the gRPC stand-in;
// its miners answer each probe as a backend would answer what the real
// router sends them.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { systemClock } from "../../common/clock.js";
import { DEMO_EMBEDDING_MODEL_ID, demoEmbedding } from "../../common/demo-model/embedding.js";
import { DEMO_MODEL_ID } from "../../common/demo-model/model.js";
import { type DemoModelServer, startDemoModelServer } from "../../common/demo-model/server.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import {
  type ProbeRequest,
  ProbeServiceService,
  type ReportVerdictsRequest,
  Verdict,
} from "../../gen/tensorclaw/v1/probe.js";
import { RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { parseProbeBody } from "../../router/services/probe-body.js";
import { probeBody } from "../../router/services/probe-kinds.js";
import type { JudgeName } from "../../validator/audit/judgement.js";
import { ReferenceJudge } from "../../validator/audit/reference-judge.js";
import { type AuditRecord, verdictOf } from "../../validator/audit/verdicts.js";
import { auditPromptOf } from "../../validator/audit-judge.js";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { CALIBRATION_PROMPTS } from "../../validator/main.js";
import { drawProbeBody } from "../../validator/probe-gen/shape-sampler.js";
import { RouterClient } from "../../validator/router-client.js";
import { FileStateStore } from "../../validator/state-store-file.js";
import { Validator, type ValidatorDeps } from "../../validator/validator.js";
import { seededRandom } from "../support/api-random.js";
import { throwawayHotkey } from "../support/keys.js";
import { okProbe, type RouterStandIn, session, startRouterStandIn } from "../support/validator-router.js";

const MODEL = DEMO_EMBEDDING_MODEL_ID;
const HONEST = ["5A", "5B", "5C"];
const FILLER = "5F";
const FILLER_TEXT = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.";

/** What the router sends a miner for a probe of a model it serves as `kind`. */
function routed(req: ProbeRequest, kind: "completion" | "embedding") {
  const rules = { requestTimeoutMs: 60_000, userSalt: "salt", maxBodyBytes: 1 << 20 };
  return probeBody(parseProbeBody(req.requestJson, "5V", rules).chat, kind);
}

/** The inputs the router sends a miner for a probe of an embeddings-only model. */
function routedInputs(req: ProbeRequest): string[] {
  const body = routed(req, "embedding");
  if (!("embedding" in body)) throw new Error("the router would not send embeddings");
  return body.embedding.input;
}

/** Directory sessions of every miner, offering `model` as `kind` only. */
const sessionsOffering = (model: string, kind: RequestKind) =>
  [...HONEST, FILLER].map((hk) =>
    session(hk, {
      models: [{ id: model, maxConcurrency: 4, contextLength: 512, inFlight: 0, kinds: [kind] }],
    }),
  );

describe("validator: audits of models that serve no chat", function () {
  this.timeout(20_000);
  let key: Hotkey;
  let dir: string;
  let router: RouterStandIn;
  let reference: DemoModelServer;
  const closers: (() => unknown)[] = [];
  const random = seededRandom(3);

  before(async () => {
    key = await throwawayHotkey();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-vnonchat-"));
    reference = await startDemoModelServer({ host: "127.0.0.1", port: 0 });
    router = await startRouterStandIn({
      sessions: sessionsOffering(MODEL, RequestKind.REQUEST_KIND_EMBEDDING),
      probe: (req) => {
        const inputs = routedInputs(req);
        // Liveness probes bring no vectors back (probe.proto); audits do.
        const vectors =
          req.cutAfterTokens !== 0
            ? []
            : inputs.map((text) =>
                req.hotkey === FILLER
                  ? Array.from({ length: 256 }, () => random() - 0.5)
                  : demoEmbedding(text),
              );
        return {
          ...okProbe(30),
          model: MODEL,
          content: "",
          completionTokens: 0,
          cut: false,
          embeddings: vectors.map((values, index) => ({ index, values })),
          kind: RequestKind.REQUEST_KIND_EMBEDDING,
        };
      },
    });
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
    await router.close();
    await reference.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function validator(references?: ValidatorDeps["references"]) {
    const client = new RouterClient([router.url], {
      signer: key,
      logger: silentLogger(),
      callTimeoutMs: 5000,
    });
    closers.push(() => client.close());
    const store = await FileStateStore.open(join(dir, "state.json"));
    const v = new Validator({
      ...(references === undefined ? {} : { references }),
      router: client,
      store,
      chain: undefined,
      selfHotkey: key.address,
      settings: {
        netuid: 92,
        dryRun: true,
        probeConcurrency: 4,
        probeTimeoutMs: 5000,
        probeIntervalMs: 50,
        weightsIntervalMs: 60_000,
        latencyTiers: DEFAULT_LATENCY_TIERS,
        verifyShare: 1,
      },
      clock: systemClock,
      randomBytes: (n) => randomBytes(n),
      random: seededRandom(17),
      logger: silentLogger(),
      print: () => undefined,
    });
    return { v, store };
  }

  /**
   * A reference judge of `model` at the demo model server, calibrated (for
   * text, not vectors) on prompts drawn as the validator draws them.
   */
  function referenceJudge(model = MODEL): ReferenceJudge {
    const judge = new ReferenceJudge({
      model,
      baseUrl: `${reference.url}/v1`,
      now: () => Date.now(),
      calibrationPrompts: () =>
        Array.from({ length: CALIBRATION_PROMPTS }, (_, i) =>
          auditPromptOf(
            drawProbeBody({ model, random: seededRandom(40 + i), audit: true, gradedShare: 0 }).body,
          ),
        ),
    });
    closers.push(() => judge.close());
    return judge;
  }

  /** The probe requests the router was sent. */
  const probesSent = () =>
    router.calls
      .filter((c) => c.method === ProbeServiceService.probe.path)
      .map((c) => c.request as ProbeRequest);

  /**
   * The one audit of each miner, once judged by `judge`: the honest ones
   * passed, the filler failed. Returns the records.
   */
  async function judgedOnce(store: FileStateStore, judge: JudgeName): Promise<AuditRecord[]> {
    const audits = await store.auditHistory();
    expect(Object.fromEntries(audits.map((a) => [a.hotkey, [a.outcome, a.judge]]))).to.deep.equal({
      "5A": ["passed", judge],
      "5B": ["passed", judge],
      "5C": ["passed", judge],
      "5F": ["failed", judge],
    });
    return audits;
  }

  /** The verdicts the validator reported to the router, by hotkey. */
  const reported = () =>
    Object.fromEntries(
      router.calls
        .filter((c) => c.method === ProbeServiceService.reportVerdicts.path)
        .flatMap((c) => (c.request as ReportVerdictsRequest).verdicts)
        .map((v) => [v.hotkey, [v.model, Verdict[v.verdict]]]),
    );

  it("without a reference, fails the miner whose vectors the others do not share and bars it", async () => {
    const { v, store } = await validator();
    await v.probeRound();
    const bodies = probesSent();
    expect(bodies.map((b) => b.cutAfterTokens)).to.deep.equal([0, 0, 0, 0]);
    expect(new Set(bodies.map((b) => b.requestJson)).size, "one prompt for all: agreement needs it").to.equal(
      1,
    );
    await judgedOnce(store, "agreement");
    expect(reported()).to.deep.equal({
      "5A": [MODEL, "VERDICT_VERIFIED"],
      "5B": [MODEL, "VERDICT_VERIFIED"],
      "5C": [MODEL, "VERDICT_VERIFIED"],
      "5F": [MODEL, "VERDICT_FAILED"],
    });
  });

  it("with a reference server, judges each miner on its own inputs against the reference's vectors", async () => {
    const judge = referenceJudge();
    const { v, store } = await validator(new Map([[MODEL, judge]]));
    await v.probeRound();
    const bodies = probesSent().map((b) => b.requestJson);
    expect(new Set(bodies).size, "a prompt of its own for each miner").to.equal(4);
    const audits = await judgedOnce(store, "reference");
    expect(audits.find((a) => a.hotkey === "5A")?.detail).to.match(/^lowest cosine to the reference 1\.000/);
    expect(reported()[FILLER]).to.deep.equal([MODEL, "VERDICT_FAILED"]);
  });

  it("takes an audit answer larger than grpc's default 4 MiB, so long vectors cannot dodge the judge", async () => {
    router.script.sessions = router.script.sessions.filter((s) => s.hotkey === FILLER);
    // 80 vectors of the tunnel's longest (16,384 values): 5.2 MB on the wire.
    const vectors = Array.from({ length: 80 }, (_, index) => ({
      index,
      values: Array.from({ length: 16_384 }, () => random() - 0.5),
    }));
    router.script.probe = () => ({
      ...okProbe(30),
      model: MODEL,
      content: "",
      completionTokens: 0,
      cut: false,
      embeddings: vectors,
      kind: RequestKind.REQUEST_KIND_EMBEDDING,
    });
    const judge = referenceJudge();
    const { v, store } = await validator(new Map([[MODEL, judge]]));
    await v.probeRound();
    const audits = await store.auditHistory();
    expect(audits.map((a) => [a.hotkey, a.outcome])).to.deep.equal([[FILLER, "failed"]]);
    expect(audits[0]?.detail).to.match(/^80 vectors for \d+ inputs$/);
  });

  it("probes and audits a model offered as chat and embeddings as both, so its vectors are checked too", async () => {
    // The filler answers chat like everybody else and embeds with random vectors.
    router.script.sessions = [...HONEST, FILLER].map((hk) =>
      session(hk, {
        models: [
          {
            id: MODEL,
            maxConcurrency: 4,
            contextLength: 512,
            inFlight: 0,
            kinds: [RequestKind.REQUEST_KIND_CHAT, RequestKind.REQUEST_KIND_EMBEDDING],
          },
        ],
      }),
    );
    const embedProbe = router.script.probe;
    router.script.probe = (req) =>
      req.kind === RequestKind.REQUEST_KIND_EMBEDDING
        ? embedProbe(req)
        : {
            ...okProbe(30),
            model: MODEL,
            content: "The same answer from every miner.",
            cut: req.cutAfterTokens !== 0,
          };
    const { v, store } = await validator();
    // Rounds until the filler has both: a failed audit (vectors) and a passed one (chat).
    const fillerHas = async () => {
      const outcomes = (await store.auditHistory()).filter((a) => a.hotkey === FILLER).map((a) => a.outcome);
      return outcomes.includes("failed") && outcomes.includes("passed");
    };
    for (let round = 0; round < 40 && !(await fillerHas()); round++) await v.probeRound();
    const kinds = new Set(probesSent().map((p) => p.kind));
    expect(kinds).to.deep.equal(new Set([RequestKind.REQUEST_KIND_CHAT, RequestKind.REQUEST_KIND_EMBEDDING]));
    const audits = await store.auditHistory();
    const failed = audits.filter((a) => a.outcome === "failed");
    expect(failed.map((a) => [a.hotkey, a.kind])).to.deep.include([FILLER, "embedding"]);
    expect(new Set(failed.map((a) => `${a.hotkey} ${a.kind}`))).to.deep.equal(
      new Set([`${FILLER} embedding`]),
    );
    // Its chat answers passed with everybody's: the vectors alone gave it away, and keep it barred.
    const mine = audits.filter((a) => a.hotkey === FILLER);
    expect(mine.filter((a) => a.outcome === "passed").map((a) => a.kind)).to.include(undefined);
    expect(verdictOf(FILLER, MODEL, mine).verdict).to.equal("failed");
    expect(reported()[FILLER]).to.deep.equal([MODEL, "VERDICT_FAILED"]);
  });

  describe("a model offered for text completions only", () => {
    /** The demo model's own completion of what the router sends; the filler's lorem ipsum. */
    beforeEach(() => {
      router.script.sessions = sessionsOffering(DEMO_MODEL_ID, RequestKind.REQUEST_KIND_COMPLETION);
      router.script.probe = async (req) => {
        const body = routed(req, "completion");
        if (!("completion" in body)) throw new Error("the router would not send a completion");
        const c = body.completion;
        let content = FILLER_TEXT;
        if (req.hotkey !== FILLER) {
          const res = await fetch(`${reference.url}/v1/completions`, {
            method: "POST",
            body: JSON.stringify({
              model: DEMO_MODEL_ID,
              prompt: c.prompt[0],
              // A backend's own default when the request sets none.
              max_tokens: c.maxTokens ?? 32,
              temperature: c.temperature ?? 1,
              ...(c.seed === undefined ? {} : { seed: Number(c.seed) }),
            }),
          });
          content = ((await res.json()) as { choices: { text: string }[] }).choices[0]?.text ?? "";
        }
        const cut = req.cutAfterTokens !== 0;
        return {
          ...okProbe(30),
          model: DEMO_MODEL_ID,
          content,
          cut,
          kind: RequestKind.REQUEST_KIND_COMPLETION,
        };
      };
    });

    it("is audited by the miners' agreement on the completion text", async () => {
      const { v, store } = await validator();
      await v.probeRound();
      expect(probesSent().map((b) => b.cutAfterTokens)).to.deep.equal([0, 0, 0, 0]);
      await judgedOnce(store, "agreement");
      expect(reported()[FILLER]).to.deep.equal([DEMO_MODEL_ID, "VERDICT_FAILED"]);
    });

    it("is audited against the reference, which scores the one plain-text prompt the router sent", async () => {
      const judge = referenceJudge(DEMO_MODEL_ID);
      const { v, store } = await validator(new Map([[DEMO_MODEL_ID, judge]]));
      await v.probeRound();
      await judgedOnce(store, "reference");
      // Marks of their own, calibrated on the reference's completions, not its chat answers.
      expect(judge.thresholdsFor("text")).to.not.equal(undefined);
      expect(judge.thresholds, "no chat audit ran").to.equal(undefined);
    });
  });
});
