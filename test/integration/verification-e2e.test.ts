// Issue #15's acceptance test, with real processes: a miner whose backend
// answers old-style probes with the real model and everything else with
// filler is caught by audits — against a reference server (`tensorclaw
// demo-model`) and, without one, by the agreement of the honest miners — its
// business for the model drops to 0, the router stops sending it users, it is
// still probed, and honest demo miners are verified on every judged audit.
// The cases of one network run in order: each builds on the traffic and
// state the previous one left.
import { expect } from "chai";
import OpenAI from "openai";
import { DEMO_MODEL_ID } from "../../miner/backend/demo.js";
import type { AuditOutcome, JudgeName } from "../../validator/audit/judgement.js";
import type { AuditRecord } from "../../validator/audit/verdicts.js";
import { verdictOf } from "../../validator/audit/verdicts.js";
import { hasFillerText, looksLikeOldProbe } from "../support/filler-backend.js";
import { lastPrintedTable, type PrintedScore, printedTables } from "../support/loop-score-table.js";
import { pollUntil } from "../support/poll.js";
import {
  startVerificationNetwork,
  type VerificationMiner,
  type VerificationNetwork,
} from "../support/verification-network.js";

/** Marks user requests, so the filler backend's log tells users from probes (which never carry it). */
const USER_MARK = "verification-e2e user";
const QUESTIONS = [
  "Why does it rain in the mountains?",
  "How do I bake bread at home?",
  "What makes the tide come in?",
  "Tell me about the people who keep bees.",
  "How does a river find its way to the sea?",
];
/** Honest audits each honest miner must have passed before the test trusts its record. */
const MIN_HONEST_PASSES = 5;

const isUser = (body: Readonly<Record<string, unknown>>) => JSON.stringify(body.messages).includes(USER_MARK);

/** One user request and what came back. */
interface Answered {
  readonly body: Record<string, unknown>;
  readonly content: string;
}

/** Users of one network: the official openai client on the router, and the reference's own answers. */
class Users {
  readonly #openai: OpenAI;
  readonly #net: VerificationNetwork;
  #sent = 0;

  constructor(net: VerificationNetwork) {
    this.#net = net;
    this.#openai = new OpenAI({
      baseURL: `http://127.0.0.1:${net.httpPort}/v1`,
      apiKey: net.apiKey,
      maxRetries: 0,
      timeout: 20_000,
    });
  }

  /** One deterministic question (temperature 0, so the model's answer is exactly known); even ones stream. */
  async ask(): Promise<Answered> {
    const n = ++this.#sent;
    const body = {
      model: DEMO_MODEL_ID,
      messages: [
        { role: "user" as const, content: `${QUESTIONS[n % QUESTIONS.length]} (${USER_MARK} ${n})` },
      ],
      temperature: 0,
      max_tokens: 48,
    };
    let content = "";
    if (n % 2 === 0) {
      const stream = await this.#openai.chat.completions.create({ ...body, stream: true });
      for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? "";
    } else {
      const r = await this.#openai.chat.completions.create(body);
      content = r.choices[0]?.message.content ?? "";
    }
    return { body, content };
  }

  /** `count` requests, two at a time. */
  async batch(count: number): Promise<Answered[]> {
    const out: Answered[] = [];
    for (let i = 0; i < count; i += 2) {
      out.push(...(await Promise.all([this.ask(), this.ask()])));
    }
    return out;
  }

  /** Steady traffic until the returned stop function is called (it resolves when the last request ends). */
  steady(): { answers: Answered[]; stop: () => Promise<void> } {
    const answers: Answered[] = [];
    let stopped = false;
    const loop = async () => {
      while (!stopped) answers.push(await this.ask());
    };
    const running = Promise.all([loop(), loop()]);
    return {
      answers,
      stop: async () => {
        stopped = true;
        await running;
      },
    };
  }

  /** What the model itself says to `body` (the reference server, not through the network). */
  async modelAnswer(body: Readonly<Record<string, unknown>>): Promise<string> {
    const res = await fetch(`${this.#net.referenceUrl}/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ...body, stream: false }),
    });
    const doc = (await res.json()) as { choices: { message: { content: string } }[] };
    return doc.choices[0]?.message.content ?? "";
  }
}

const auditsOf = (all: readonly AuditRecord[], m: VerificationMiner) =>
  all.filter((r) => r.hotkey === m.hotkey && r.model === DEMO_MODEL_ID);
const count = (rs: readonly AuditRecord[], outcome: AuditOutcome, judge: JudgeName) =>
  rs.filter((r) => r.outcome === outcome && r.judge === judge).length;

/** Resolves once the router logged that it applied a FAILED verdict for `m`'s demo model. */
function routerBars(net: VerificationNetwork, m: VerificationMiner, timeoutMs: number) {
  return net.router.waitFor(
    new RegExp(`"hotkey":"${m.hotkey}","model":"${DEMO_MODEL_ID}"[^\\n]*verdict FAILED: no user traffic`),
    timeoutMs,
    "stderr",
  );
}

/** `m`'s audits once one of them failed by `judge` (a graded prompt may be what failed it first). */
function failedBy(net: VerificationNetwork, m: VerificationMiner, judge: JudgeName): Promise<AuditRecord[]> {
  return pollUntil(
    async () => {
      const mine = auditsOf(await net.audits(), m);
      return count(mine, "failed", judge) >= 1 ? mine : undefined;
    },
    { what: `a ${judge} audit of ${m.name} failed`, timeoutMs: 15_000, intervalMs: 100 },
  );
}

/** Waits for a printed score table satisfying `ok`. */
function scoreTable(net: VerificationNetwork, what: string, ok: (rows: PrintedScore[]) => boolean) {
  return pollUntil(
    () => {
      const rows = lastPrintedTable(net.validator?.stdout ?? "");
      return rows !== undefined && ok(rows) ? rows : undefined;
    },
    { what, timeoutMs: 15_000, intervalMs: 200 },
  );
}

describe("answers checked against the model (real processes)", function () {
  this.timeout(100_000);

  describe("a validator with a reference server (tensorclaw demo-model)", () => {
    let net: VerificationNetwork;
    let users: Users;
    let honest: VerificationMiner;
    let filler: VerificationMiner;

    before(async () => {
      net = await startVerificationNetwork({ honestMiners: 1 });
      users = new Users(net);
      honest = net.miners.find((m) => !m.filler) as VerificationMiner;
      filler = net.miners.find((m) => m.filler) as VerificationMiner;
      await net.allActive();
    });
    after(async () => {
      await net?.close();
    });

    it("has a filler backend that answers old-style probes like the model and users with filler", async () => {
      // The adversary the issue describes: before it, this backend passed every probe.
      const oldProbe = {
        model: DEMO_MODEL_ID,
        messages: [{ role: "user", content: "Say hello." }],
        max_tokens: 5,
        stream: false,
      };
      expect(looksLikeOldProbe(oldProbe)).to.equal(true);
      const viaFiller = await fetch(`${net.filler.url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(oldProbe),
      });
      const answer = ((await viaFiller.json()) as { choices: { message: { content: string } }[] }).choices[0]
        ?.message.content;
      expect(answer).to.be.a("string").that.is.not.empty;
      expect(answer).to.equal(await users.modelAnswer(oldProbe));

      // Users reach both miners: the honest one answers as the model does, the filler with filler.
      let served: Answered[] = [];
      await pollUntil(
        async () => {
          served = served.concat(await users.batch(4));
          const fillerHits = net.filler.requests.filter((r) => isUser(r.body)).length;
          const honestHits = served.length - fillerHits;
          return fillerHits >= 2 && honestHits >= 2 ? true : undefined;
        },
        { what: "user requests served by both miners", timeoutMs: 30_000, intervalMs: 0 },
      );
      const fillerAnswers = served.filter((a) => hasFillerText(a.content));
      expect(fillerAnswers.length).to.equal(net.filler.requests.filter((r) => isUser(r.body)).length);
      for (const a of served.filter((x) => !hasFillerText(x.content))) {
        expect(a.content).to.equal(await users.modelAnswer(a.body));
      }
      const ledger = await pollUntil(
        async () => {
          const l = await net.ledgerTokens();
          return (l.get(honest.hotkey) ?? 0) > 0 && (l.get(filler.hotkey) ?? 0) > 0 ? l : undefined;
        },
        { what: "both miners credited in the ledger", timeoutMs: 10_000, intervalMs: 100 },
      );
      expect(ledger.get(filler.hotkey)).to.be.greaterThan(0);
    });

    it("fails the filler's audits, bars it from users while still probing it, and verifies the honest miner", async () => {
      const traffic = users.steady();
      const validator = net.startValidator({ reference: true, verifyShare: 0.5 });
      try {
        await routerBars(net, filler, 45_000);
      } finally {
        await traffic.stop();
      }
      expect(validator.running, validator.tail()).to.equal(true);

      // The validator's record: the filler failed against the reference, and never passed.
      const fillerAudits = await failedBy(net, filler, "reference");
      expect(fillerAudits.filter((r) => r.outcome === "passed")).to.deep.equal([]);
      expect(verdictOf(filler.hotkey, DEMO_MODEL_ID, fillerAudits).verdict).to.equal("failed");

      // From the verdict on, users get the model's own answers only, and none reach the filler. (The
      // user requests in flight when it came have all ended: everything the filler gets from here on
      // was routed after the verdict.)
      const since = net.filler.requests.length;
      const after = await users.batch(16);
      for (const a of after) {
        expect(hasFillerText(a.content), a.content).to.equal(false);
        expect(a.content).to.equal(await users.modelAnswer(a.body));
      }

      // Yet it is still probed (liveness and audits), so it could pass again.
      const later = await pollUntil(
        () => (net.filler.requests.length - since >= 3 ? net.filler.requests.slice(since) : undefined),
        { what: "probes of the barred filler at its backend", timeoutMs: 20_000, intervalMs: 100 },
      );
      expect(later.filter((r) => isUser(r.body))).to.deep.equal([]);

      // The operator's table: the filler earned business for its users until the verdict; now the
      // router's ledger still credits its tokens, but the validator counts neither them nor points.
      const rows = await scoreTable(
        net,
        "a score table with the filler's model under audit failed",
        (rs) => rs.find((r) => r.hotkey === filler.hotkey)?.auditFailed === DEMO_MODEL_ID,
      );
      const earlier = printedTables(validator.stdout).map((t) => t.find((r) => r.hotkey === filler.hotkey));
      expect(earlier.some((r) => r !== undefined && r.business > 0 && r.auditFailed === "-")).to.equal(true);
      const fillerRow = rows.find((r) => r.hotkey === filler.hotkey) as PrintedScore;
      const honestRow = rows.find((r) => r.hotkey === honest.hotkey) as PrintedScore;
      expect((await net.ledgerTokens()).get(filler.hotkey)).to.be.greaterThan(0);
      expect(fillerRow.tokens).to.equal(0);
      expect(fillerRow.business).to.equal(0);
      expect(honestRow.business).to.equal(100);
      expect(honestRow.auditFailed).to.equal("-");

      // The honest miner: verified on every judged audit (passed or unverifiable; at least a few passed).
      const honestAudits = await pollUntil(
        async () => {
          const mine = auditsOf(await net.audits(), honest);
          return count(mine, "passed", "reference") >= MIN_HONEST_PASSES ? mine : undefined;
        },
        { what: `${MIN_HONEST_PASSES} passed reference audits of the honest miner`, timeoutMs: 40_000 },
      );
      expect(honestAudits.filter((r) => r.outcome === "failed")).to.deep.equal([]);
      expect(verdictOf(honest.hotkey, DEMO_MODEL_ID, honestAudits).verdict).to.equal("verified");
    });
  });

  describe("a validator without a reference (agreement among miners)", () => {
    let net: VerificationNetwork;

    before(async () => {
      net = await startVerificationNetwork({ honestMiners: 3 });
      await net.allActive();
    });
    after(async () => {
      await net?.close();
    });

    it("fails the filler by the honest miners' agreement and passes the honest ones", async () => {
      const filler = net.miners.find((m) => m.filler) as VerificationMiner;
      const honest = net.miners.filter((m) => !m.filler);
      const validator = net.startValidator({ reference: false, verifyShare: 0.5 });
      await routerBars(net, filler, 45_000);
      expect(validator.running, validator.tail()).to.equal(true);

      const fillerAudits = await failedBy(net, filler, "agreement");
      expect(fillerAudits.filter((r) => r.outcome === "passed")).to.deep.equal([]);

      const all = await pollUntil(
        async () => {
          const a = await net.audits();
          return honest.every((m) => count(auditsOf(a, m), "passed", "agreement") >= 2) ? a : undefined;
        },
        { what: "two passed agreement audits of every honest miner", timeoutMs: 40_000 },
      );
      for (const m of honest) {
        expect(
          auditsOf(all, m).filter((r) => r.outcome === "failed"),
          m.name,
        ).to.deep.equal([]);
        expect(verdictOf(m.hotkey, DEMO_MODEL_ID, auditsOf(all, m)).verdict).to.equal("verified");
      }
      // The router was told about the filler alone.
      const barred = net.router.stderr.split("\n").filter((l) => l.includes("verdict FAILED"));
      expect(barred.filter((l) => honest.some((m) => l.includes(m.hotkey)))).to.deep.equal([]);
      await scoreTable(
        net,
        "the filler's model under audit failed, no honest one's",
        (rs) =>
          rs.find((r) => r.hotkey === filler.hotkey)?.auditFailed === DEMO_MODEL_ID &&
          honest.every((m) => rs.find((r) => r.hotkey === m.hotkey)?.auditFailed === "-"),
      );
    });
  });
});
