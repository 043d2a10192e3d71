// Verification cost per audit, measured the way the validator judges:
//
//   - reference audits: the real ReferenceJudge against a real reference
//     server (the demo model, in its own process as a vLLM would be), one
//     audit at a time, over audit prompts drawn like the validator's and
//     answered honestly by the model itself at temperature 0, with a share of
//     filler answers; calls and token ids are counted on the judge's own
//     client, the server's CPU read from /proc;
//   - the one-off calibration of that judge;
//   - graded audits: the reference's own answer (one chat call per case) and
//     the pure grading of four answers;
//   - the agreement judge: pure CPU over a case of four answers.
import { performance } from "node:perf_hooks";
import { DEMO_MODEL_ID } from "../common/demo-model/model.js";
import { judgeAgreement } from "../validator/audit/agreement-judge.js";
import { judgeGradedGroup } from "../validator/audit/graded-judge.js";
import type { AuditOutcome } from "../validator/audit/judgement.js";
import { type ChatMessageJson, ReferenceClient } from "../validator/audit/reference-client.js";
import { type AuditPrompt, ReferenceJudge } from "../validator/audit/reference-judge.js";
import { auditPromptOf } from "../validator/audit-judge.js";
import { CALIBRATION_PROMPTS } from "../validator/main.js";
import type { Random } from "../validator/probe-gen/random.js";
import { drawProbeBody, type ProbeGrading } from "../validator/probe-gen/shape-sampler.js";
import { mean, median, percentile, processCpuMs } from "./audit-stats.js";

/** Every FILLER_EVERY-th audit is answered with filler instead of the model's answer. */
const FILLER_EVERY = 4;
/** Answers a miner with no model might send: fluent, on no topic in particular. */
const FILLERS = [
  "Great question! There are many factors to consider here, and the best choice depends on your goals.",
  "I hope this helps. Let me know if you have any other questions, I am happy to assist further.",
  "Sure. In short, it depends on the context, but generally speaking the answer is yes, with some caveats " +
    "that are worth keeping in mind before you decide what to do next.",
  "Here is a summary: the topic is broad and has been studied for many years by experts around the world.",
];

/** The reference judge's client, counting what it asks of the server. */
class CountingReferenceClient extends ReferenceClient {
  calls = 0;
  /** Token ids of conversations tokenized (the audits' prompts). */
  promptTokens = 0;
  /** Token ids of plain texts tokenized (the answers). */
  answerTokens = 0;
  /** Positions the reference scored with logprobs (prompt + answer of each echo). */
  echoedTokens = 0;

  override async tokenizeChat(messages: readonly ChatMessageJson[]): Promise<number[]> {
    this.calls++;
    const ids = await super.tokenizeChat(messages);
    this.promptTokens += ids.length;
    return ids;
  }

  override async tokenizeText(text: string): Promise<number[]> {
    this.calls++;
    const ids = await super.tokenizeText(text);
    this.answerTokens += ids.length;
    return ids;
  }

  override echoLogprobs(ids: readonly number[], topK: number): Promise<unknown> {
    this.calls++;
    this.echoedTokens += ids.length;
    return super.echoLogprobs(ids, topK);
  }

  override chat(messages: readonly ChatMessageJson[], maxTokens: number, seed: number): Promise<string> {
    this.calls++;
    return super.chat(messages, maxTokens, seed);
  }

  snapshot() {
    const { calls, promptTokens, answerTokens, echoedTokens } = this;
    return { calls, promptTokens, answerTokens, echoedTokens };
  }
}

type Counts = ReturnType<CountingReferenceClient["snapshot"]>;
const minus = (a: Counts, b: Counts): Counts => ({
  calls: a.calls - b.calls,
  promptTokens: a.promptTokens - b.promptTokens,
  answerTokens: a.answerTokens - b.answerTokens,
  echoedTokens: a.echoedTokens - b.echoedTokens,
});

/** Outcomes of a set of judged answers. */
export type OutcomeCounts = Record<AuditOutcome, number>;
const noOutcomes = (): OutcomeCounts => ({ passed: 0, failed: 0, unverifiable: 0 });

/** What the reference-side measurements found (times in ms, tokens in the reference's own tokenizer). */
export interface ReferenceAuditFigures {
  readonly audits: number;
  readonly medianMs: number;
  readonly p95Ms: number;
  readonly callsPerAudit: number;
  readonly promptTokensMean: number;
  readonly answerTokensMean: number;
  /** Positions the reference scores per audit (prompt + answer). */
  readonly tokensMean: number;
  readonly tokensMedian: number;
  /** The reference server's CPU per audit (its process, from /proc). */
  readonly referenceCpuMsPerAudit: number;
  readonly honest: OutcomeCounts;
  readonly filler: OutcomeCounts;
  readonly calibration: {
    readonly prompts: number;
    readonly ms: number;
    readonly calls: number;
    /** Each prompt's prompt and answer go through the model twice: written, then scored. */
    readonly tokens: number;
  };
  /** The honest answers, for the overhead figures (their length in the router's tokenizer). */
  readonly honestAnswers: readonly string[];
}

/** One audit prompt with the model's own answer to it. */
interface AnsweredAudit {
  readonly prompt: AuditPrompt;
  readonly answer: string;
}

const auditDraw = (random: Random, gradedShare: number) =>
  drawProbeBody({ model: DEMO_MODEL_ID, random, audit: true, gradedShare });

/**
 * Reference audits and calibration against the server at `baseUrl` (pid
 * `referencePid`, for its CPU). Honest answers are written by the reference
 * before any timing, so the timings hold judging only.
 */
export async function benchReferenceAudits(opts: {
  readonly baseUrl: string;
  readonly referencePid: number | undefined;
  readonly audits: number;
  readonly random: Random;
}): Promise<{ figures: ReferenceAuditFigures; answered: readonly AnsweredAudit[] }> {
  const { random } = opts;
  const options = {
    model: DEMO_MODEL_ID,
    baseUrl: opts.baseUrl,
    // A fixed clock: the judge calibrates when told to, never in the middle of the timed audits.
    now: () => 0,
    // As validator/main.ts builds them: audit-like prompts, none graded.
    calibrationPrompts: () =>
      Array.from({ length: CALIBRATION_PROMPTS }, () => auditPromptOf(auditDraw(random, 0).body)),
  };
  const client = new CountingReferenceClient(options);
  const judge = new ReferenceJudge(options, client);
  try {
    const c0 = client.snapshot();
    const t0 = performance.now();
    const report = await judge.calibrate();
    const calibrationMs = performance.now() - t0;
    const cal = minus(client.snapshot(), c0);
    if (report.thresholds === undefined) throw new Error(`calibration failed: ${report.errors.join("; ")}`);

    const answered: AnsweredAudit[] = [];
    for (let i = 0; i < opts.audits; i++) {
      const prompt = auditPromptOf(auditDraw(random, 0).body);
      answered.push({ prompt, answer: await judge.answer(prompt) });
    }
    const times: number[] = [];
    const tokens: number[] = [];
    const honest = noOutcomes();
    const filler = noOutcomes();
    const before = client.snapshot();
    const cpu0 = processCpuMs(opts.referencePid);
    for (const [i, a] of answered.entries()) {
      const isFiller = i % FILLER_EVERY === FILLER_EVERY - 1;
      const text = isFiller ? (FILLERS[i % FILLERS.length] as string) : a.answer;
      const echoed = client.echoedTokens;
      const t = performance.now();
      const j = await judge.judge(a.prompt, text);
      times.push(performance.now() - t);
      tokens.push(client.echoedTokens - echoed);
      (isFiller ? filler : honest)[j.outcome]++;
    }
    const cpuMs = processCpuMs(opts.referencePid) - cpu0;
    const used = minus(client.snapshot(), before);
    const n = answered.length;
    return {
      answered,
      figures: {
        audits: n,
        medianMs: median(times),
        p95Ms: percentile(times, 95),
        callsPerAudit: used.calls / n,
        promptTokensMean: used.promptTokens / n,
        answerTokensMean: used.answerTokens / n,
        tokensMean: mean(tokens),
        tokensMedian: median(tokens),
        referenceCpuMsPerAudit: cpuMs / n,
        honest,
        filler,
        calibration: {
          prompts: CALIBRATION_PROMPTS,
          ms: calibrationMs,
          calls: cal.calls,
          tokens: 2 * cal.echoedTokens,
        },
        honestAnswers: answered.filter((_, i) => i % FILLER_EVERY !== FILLER_EVERY - 1).map((a) => a.answer),
      },
    };
  } finally {
    await judge.close();
  }
}

/** ms per call of `fn`, timed over `repeats` calls after one warm-up call. */
function cpuMsPerCall(fn: () => unknown, repeats: number): number {
  fn();
  const t = performance.now();
  for (let i = 0; i < repeats; i++) fn();
  return (performance.now() - t) / repeats;
}

/** A case of four answers: three honest miners (identical at temperature 0) and one filler. */
const fourAnswers = (honest: string, filler: string) =>
  [honest, honest, honest, filler].map((text, i) => ({ hotkey: `5Miner${i}`, text }));

/** The agreement judge's CPU per case of four answers (median over cases). */
export function benchAgreement(answered: readonly AnsweredAudit[], repeats: number): { msPerCase: number } {
  const per = answered.map((a, i) =>
    cpuMsPerCall(() => judgeAgreement(fourAnswers(a.answer, FILLERS[i % FILLERS.length] as string)), repeats),
  );
  return { msPerCase: median(per) };
}

/** What graded audits cost. */
export interface GradedFigures {
  readonly cases: number;
  /** The reference's own answer, one chat call per case (shared by the miners of the model). */
  readonly referenceMedianMs: number;
  readonly referenceP95Ms: number;
  /** Prompt + answer tokens of that call (the reference's tokenizer). */
  readonly referenceTokensMean: number;
  /** Grading four answers against the reference's (pure CPU). */
  readonly gradeMsPerCase: number;
  /** Cases the reference itself answered right (the others are unverifiable). */
  readonly referenceRight: number;
}

/** Graded audits against the reference at `baseUrl`. */
export async function benchGraded(opts: {
  readonly baseUrl: string;
  readonly cases: number;
  readonly repeats: number;
  readonly random: Random;
}): Promise<GradedFigures> {
  const client = new ReferenceClient({ model: DEMO_MODEL_ID, baseUrl: opts.baseUrl });
  try {
    const times: number[] = [];
    const tokens: number[] = [];
    const grading: number[] = [];
    let right = 0;
    for (let i = 0; i < opts.cases; i++) {
      const p = auditDraw(opts.random, 1);
      const graded = p.graded as ProbeGrading;
      const prompt = auditPromptOf(p.body);
      const t = performance.now();
      const answer = await client.chat(prompt.messages, prompt.maxTokens, prompt.seed);
      times.push(performance.now() - t);
      // Counted after the timing: the validator does not tokenize here.
      const ids = await Promise.all([client.tokenizeChat(prompt.messages), client.tokenizeText(answer)]);
      tokens.push(ids[0].length + ids[1].length);
      if (graded.grade(answer)) right++;
      const answers = fourAnswers(answer, FILLERS[i % FILLERS.length] as string);
      grading.push(cpuMsPerCall(() => judgeGradedGroup(graded, answers, { answer }), opts.repeats));
    }
    return {
      cases: opts.cases,
      referenceMedianMs: median(times),
      referenceP95Ms: percentile(times, 95),
      referenceTokensMean: mean(tokens),
      gradeMsPerCase: median(grading),
      referenceRight: right,
    };
  } finally {
    await client.close();
  }
}
