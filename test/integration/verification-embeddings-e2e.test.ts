// Embeddings are checked like answers, with real processes: a miner whose
// backend has no embedding model behind it (the filler backend hashes words
// into vectors of the right shape) serves users and is credited, until the
// validator's audits compare its vectors with the reference's (`tensorclaw
// demo-model` serving the demo embedding model) and fail them. From the
// verdict on the router sends it no user traffic for the model while still
// probing it, and the honest demo miner is verified. The cases run in order
// on one network.
import { expect } from "chai";
import OpenAI from "openai";
import { DEMO_EMBEDDING_MODEL_ID, demoEmbedding } from "../../common/demo-model/embedding.js";
import type { AuditRecord } from "../../validator/audit/verdicts.js";
import { verdictOf } from "../../validator/audit/verdicts.js";
import { fillerEmbedding } from "../support/filler-backend.js";
import { pollUntil } from "../support/poll.js";
import {
  startVerificationNetwork,
  type VerificationMiner,
  type VerificationNetwork,
} from "../support/verification-network.js";

const MODEL = DEMO_EMBEDDING_MODEL_ID;
/** Marks users' texts, so the filler's log tells users from probes (which never carry it). */
const USER_MARK = "embeddings-e2e user";

const isUser = (body: Readonly<Record<string, unknown>>) => JSON.stringify(body.input).includes(USER_MARK);
const same = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((x, i) => Math.abs(x - (b[i] as number)) < 1e-6);

describe("embeddings checked against the model (real processes)", function () {
  this.timeout(100_000);
  let net: VerificationNetwork;
  let openai: OpenAI;
  let honest: VerificationMiner;
  let filler: VerificationMiner;
  let sent = 0;

  /** One user's embeddings request of two texts; true when the vectors are the model's own. */
  async function embed(): Promise<boolean> {
    const n = ++sent;
    const input = [
      `Where do swallows go in winter? (${USER_MARK} ${n})`,
      `Notes on pruning apple trees ${n}`,
    ];
    const r = await openai.embeddings.create({ model: MODEL, input, encoding_format: "float" });
    const vectors = r.data.map((d) => d.embedding);
    if (vectors.every((v, i) => same(v, demoEmbedding(input[i] as string)))) return true;
    // Anything else must be the filler's, not a third kind of answer.
    expect(vectors.every((v, i) => same(v, fillerEmbedding(input[i] as string)))).to.equal(true);
    return false;
  }
  const auditsOf = async (m: VerificationMiner): Promise<AuditRecord[]> =>
    (await net.audits()).filter((r) => r.hotkey === m.hotkey && r.model === MODEL);

  before(async () => {
    net = await startVerificationNetwork({ honestMiners: 1, model: MODEL });
    openai = new OpenAI({
      baseURL: `http://127.0.0.1:${net.httpPort}/v1`,
      apiKey: net.apiKey,
      maxRetries: 0,
      timeout: 20_000,
    });
    honest = net.miners.find((m) => !m.filler) as VerificationMiner;
    filler = net.miners.find((m) => m.filler) as VerificationMiner;
    await net.allActive();
  });
  after(async () => {
    await net?.close();
  });

  it("serves users from both miners, the filler with vectors of no model, and credits both", async () => {
    let model = 0;
    let fill = 0;
    await pollUntil(
      async () => {
        for (const own of await Promise.all([embed(), embed()])) own ? model++ : fill++;
        return model >= 2 && fill >= 2 ? true : undefined;
      },
      { what: "users served by both miners", timeoutMs: 30_000, intervalMs: 0 },
    );
    expect(net.filler.requests.filter((r) => isUser(r.body))).to.have.length(fill);
    await pollUntil(
      async () => {
        const l = await net.ledgerTokens();
        return (l.get(honest.hotkey) ?? 0) > 0 && (l.get(filler.hotkey) ?? 0) > 0 ? true : undefined;
      },
      { what: "both miners credited in the ledger", timeoutMs: 10_000, intervalMs: 100 },
    );
  });

  it("fails the filler's vectors against the reference, bars it from users, still probes it, verifies the honest miner", async () => {
    const validator = net.startValidator({ reference: true, verifyShare: 0.5 });
    await net.router.waitFor(
      new RegExp(`"hotkey":"${filler.hotkey}","model":"${MODEL}"[^\\n]*verdict FAILED: no user traffic`),
      45_000,
      "stderr",
    );
    expect(validator.running, validator.tail()).to.equal(true);
    const fillerAudits = await auditsOf(filler);
    expect(fillerAudits.length).to.be.greaterThan(0);
    expect(fillerAudits.filter((r) => r.outcome !== "failed")).to.deep.equal([]);
    expect(fillerAudits.every((r) => r.judge === "reference")).to.equal(true);
    expect(fillerAudits[0]?.detail).to.match(
      /^lowest cosine to the reference 0\.\d+ over \d+ inputs < 0\.900$/,
    );

    // From the verdict on, users get the model's own vectors only.
    const since = net.filler.requests.length;
    for (let i = 0; i < 4; i++) expect(await Promise.all([embed(), embed()])).to.deep.equal([true, true]);
    // Yet it is still probed, so it could pass again.
    const later = await pollUntil(
      () => (net.filler.requests.length - since >= 2 ? net.filler.requests.slice(since) : undefined),
      { what: "probes of the barred filler at its backend", timeoutMs: 20_000, intervalMs: 100 },
    );
    expect(later.filter((r) => isUser(r.body))).to.deep.equal([]);

    const honestAudits = await pollUntil(
      async () => {
        const mine = await auditsOf(honest);
        return mine.filter((r) => r.outcome === "passed").length >= 3 ? mine : undefined;
      },
      { what: "3 passed audits of the honest miner", timeoutMs: 40_000, intervalMs: 200 },
    );
    expect(honestAudits.filter((r) => r.outcome !== "passed")).to.deep.equal([]);
    expect(honestAudits[0]?.detail).to.match(/^lowest cosine to the reference 1\.000 over \d+ inputs$/);
    expect(verdictOf(honest.hotkey, MODEL, honestAudits).verdict).to.equal("verified");
  });
});
