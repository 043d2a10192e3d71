// A miner that serves an embedding model is paid for the prompt tokens it
// embeds, so one that returns vectors of no model (random, or a hash of the
// words) must be caught like a chat miner that serves filler. The validator
// audits such a model on the vectors its probes bring back: against the
// reference's vectors (here the demo model server, over HTTP) or by the
// agreement of the miners that embedded the same inputs. The router is the
// gRPC stand-in; its miners answer each probe with the vectors of the
// inputs the real router would have sent them.
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { systemClock } from "../../common/clock.js";
import { DEMO_EMBEDDING_MODEL_ID, demoEmbedding } from "../../common/demo-model/embedding.js";
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
import { ReferenceJudge } from "../../validator/audit/reference-judge.js";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { RouterClient } from "../../validator/router-client.js";
import { FileStateStore } from "../../validator/state-store-file.js";
import { Validator, type ValidatorDeps } from "../../validator/validator.js";
import { seededRandom } from "../support/api-random.js";
import { throwawayHotkey } from "../support/keys.js";
import { okProbe, type RouterStandIn, session, startRouterStandIn } from "../support/validator-router.js";

const MODEL = DEMO_EMBEDDING_MODEL_ID;
const HONEST = ["5A", "5B", "5C"];
const FILLER = "5F";

/** The inputs the router sends a miner for a probe of an embeddings-only model. */
function routedInputs(req: ProbeRequest): string[] {
  const rules = { requestTimeoutMs: 60_000, userSalt: "salt", maxBodyBytes: 1 << 20 };
  const body = probeBody(parseProbeBody(req.requestJson, "5V", rules).chat, "embedding");
  if (!("embedding" in body)) throw new Error("the router would not send embeddings");
  return body.embedding.input;
}

describe("validator: audits of a model that serves only embeddings", function () {
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
    dir = await mkdtemp(join(tmpdir(), "tc-vembed-"));
    reference = await startDemoModelServer({ host: "127.0.0.1", port: 0 });
    const embedOnly = { id: MODEL, maxConcurrency: 4, contextLength: 512, inFlight: 0 };
    router = await startRouterStandIn({
      sessions: [...HONEST, FILLER].map((hk) =>
        session(hk, { models: [{ ...embedOnly, kinds: [RequestKind.REQUEST_KIND_EMBEDDING] }] }),
      ),
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

  /** A reference judge of the demo embedding model at the demo model server. */
  function referenceJudge(): ReferenceJudge {
    const judge = new ReferenceJudge({
      model: MODEL,
      baseUrl: `${reference.url}/v1`,
      now: () => Date.now(),
      // Vectors are compared directly: nothing to calibrate.
      calibrationPrompts: () => [],
    });
    closers.push(() => judge.close());
    return judge;
  }

  /** The probe requests the router was sent. */
  const probesSent = () =>
    router.calls
      .filter((c) => c.method === ProbeServiceService.probe.path)
      .map((c) => c.request as ProbeRequest);

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
    const audits = await store.auditHistory();
    expect(Object.fromEntries(audits.map((a) => [a.hotkey, [a.outcome, a.judge]]))).to.deep.equal({
      "5A": ["passed", "agreement"],
      "5B": ["passed", "agreement"],
      "5C": ["passed", "agreement"],
      "5F": ["failed", "agreement"],
    });
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
    const audits = await store.auditHistory();
    expect(Object.fromEntries(audits.map((a) => [a.hotkey, [a.outcome, a.judge]]))).to.deep.equal({
      "5A": ["passed", "reference"],
      "5B": ["passed", "reference"],
      "5C": ["passed", "reference"],
      "5F": ["failed", "reference"],
    });
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
    });
    const judge = referenceJudge();
    const { v, store } = await validator(new Map([[MODEL, judge]]));
    await v.probeRound();
    const audits = await store.auditHistory();
    expect(audits.map((a) => [a.hotkey, a.outcome])).to.deep.equal([[FILLER, "failed"]]);
    expect(audits[0]?.detail).to.match(/^80 vectors for \d+ inputs$/);
  });

  it("probes a completions-only model but does not audit it (no judge reads a completion)", async () => {
    router.script.sessions = [
      session("5A", {
        models: [
          {
            id: "c",
            maxConcurrency: 4,
            contextLength: 512,
            inFlight: 0,
            kinds: [RequestKind.REQUEST_KIND_COMPLETION],
          },
        ],
      }),
    ];
    const { v } = await validator();
    await v.probeRound();
    expect(probesSent().map((b) => b.cutAfterTokens)).to.deep.equal([5]);
  });
});
