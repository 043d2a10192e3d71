/**
 * The reference judge (`--reference <model>=<URL>`): scores a miner's audit
 * answer under a reference server of the same open-weight model and passes
 * it when it looks like what that model says.
 *
 * For one audit: the conversation is tokenized with the model's chat
 * template (reply primer included), the miner's answer is tokenized as
 * plain text, and the reference echoes `[...prompt, ...answer]` with
 * logprobs; the answer's positions give its mean log-probability and the
 * share of its tokens inside the reference's top k (reference-score.ts).
 * Both must reach marks calibrated on the reference's own answers to
 * audit-like prompts (reference-thresholds.ts), recalibrated every few
 * hours. Until a calibration succeeds, and whenever the reference fails,
 * audits are unverifiable: a miner is never failed on a broken reference
 * or on marks drawn from nothing.
 *
 * A model probed as text completions (it serves no chat) is judged the
 * same way on its one plain-text prompt: tokenized as the server tokenizes
 * a completion prompt (special tokens included), with marks calibrated
 * apart, on the reference's own completions of the same prompts.
 *
 * Cost per audit: three reference calls (two tokenizations and one prefill
 * of prompt + answer, no generation).
 */
import { fmt, type Judgement, unverifiable } from "./judgement.js";
import { completionTextOf } from "./probe-forms.js";
import {
  type ChatMessageJson,
  ReferenceClient,
  type ReferenceClientOptions,
  ReferenceServerError,
} from "./reference-client.js";
import { type ReferenceScore, scoreEcho } from "./reference-score.js";
import {
  calibrateThresholds,
  DEFAULT_THRESHOLD_POLICY,
  judgeReferenceScore,
  type ThresholdPolicy,
  type Thresholds,
  usableSamples,
} from "./reference-thresholds.js";

/** An audit prompt as the judge needs it: what the miner was asked, deterministically. */
export interface AuditPrompt {
  /** The conversation sent (OpenAI chat messages as JSON). */
  readonly messages: readonly ChatMessageJson[];
  /** The audit's `max_tokens`. */
  readonly maxTokens: number;
  /** The audit's fixed `seed`. */
  readonly seed: number;
  /** The tools the audit offered, if any (the chat template renders them into the prompt). */
  readonly tools?: readonly ChatMessageJson[];
  /**
   * The one prompt of a text completion, for a model probed as completions:
   * when set, it is what the miner was asked, as plain text without the
   * chat template, and `messages` only say what it was made from.
   */
  readonly text?: string;
}

/** Settings of a reference judge. */
export interface ReferenceJudgeOptions extends ReferenceClientOptions {
  /** k of the top-k share (default {@link DEFAULT_TOP_K}; vLLM allows up to 20 by default). */
  readonly topK?: number;
  /** How marks are calibrated (default DEFAULT_THRESHOLD_POLICY). */
  readonly policy?: ThresholdPolicy;
  /** Audit-like prompts for the reference to answer at each calibration (the audit generator's, same seed and max_tokens). */
  readonly calibrationPrompts: () => readonly AuditPrompt[];
  /**
   * Prompts like text-completion audits, with `text` set, for the marks of
   * those; absent: the texts of `calibrationPrompts`, joined as the router
   * joins a probe's messages.
   */
  readonly textCalibrationPrompts?: () => readonly AuditPrompt[];
  /** Unix ms, for the calibration schedule. */
  readonly now: () => number;
  /** Recalibrate this long after a successful calibration (default 6 h). */
  readonly recalibrateMs?: number;
  /** Retry this long after a failed calibration (default 60 s). */
  readonly calibrationRetryMs?: number;
}

/** What one calibration did. */
export interface CalibrationReport {
  readonly atMs: number;
  /** Honest answers scored. */
  readonly samples: readonly ReferenceScore[];
  /** Why the other prompts gave no sample. */
  readonly errors: readonly string[];
  /** The marks in force after it (a failed calibration keeps the previous ones). */
  readonly thresholds: Thresholds | undefined;
}

/**
 * How an audit's prompt reached the model: through its chat template, or as
 * the plain text of a completion (AuditPrompt.text).
 */
export type PromptForm = "chat" | "text";

/** The calibration state of one prompt form. */
interface FormCalibration {
  thresholds?: Thresholds;
  last?: CalibrationReport;
  nextAtMs: number;
  running?: Promise<CalibrationReport>;
}

/** Default k of the top-k share. */
export const DEFAULT_TOP_K = 5;
/** Default time between calibrations. */
export const DEFAULT_RECALIBRATE_MS = 6 * 3_600_000;
/** Default wait before retrying a failed calibration. */
export const DEFAULT_CALIBRATION_RETRY_MS = 60_000;

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Judges audit answers for one model against its reference server. */
export class ReferenceJudge {
  /** The model this judge checks. */
  readonly model: string;
  readonly #client: ReferenceClient;
  readonly #opts: ReferenceJudgeOptions;
  readonly #policy: ThresholdPolicy;
  readonly #topK: number;
  /** Calibration per prompt form: a chat and a plain-text prompt score differently. */
  readonly #forms: Record<PromptForm, FormCalibration> = {
    chat: { nextAtMs: Number.NEGATIVE_INFINITY },
    text: { nextAtMs: Number.NEGATIVE_INFINITY },
  };

  /** `client` replaces the HTTP client built from `opts` (its settings then come from it). */
  constructor(opts: ReferenceJudgeOptions, client?: ReferenceClient) {
    this.model = opts.model;
    this.#opts = opts;
    this.#client = client ?? new ReferenceClient(opts);
    this.#policy = opts.policy ?? DEFAULT_THRESHOLD_POLICY;
    const k = opts.topK ?? DEFAULT_TOP_K;
    if (!Number.isInteger(k) || k < 1 || k > 20)
      throw new Error(`top-k must be an integer in 1..20, not ${k}`);
    this.#topK = k;
  }

  /** The marks in force for chat audits; undefined until a calibration succeeded. */
  get thresholds(): Thresholds | undefined {
    return this.#forms.chat.thresholds;
  }

  /** The latest calibration for chat audits, successful or not. */
  get lastCalibration(): CalibrationReport | undefined {
    return this.#forms.chat.last;
  }

  /** The marks in force for audits of `form`. */
  thresholdsFor(form: PromptForm): Thresholds | undefined {
    return this.#forms[form].thresholds;
  }

  /**
   * Scores `answer` to `prompt` under the reference. An empty answer scores
   * `tokens: 0` with NaN numbers, without asking for logprobs. Throws
   * ReferenceServerError when the reference fails.
   */
  async score(prompt: AuditPrompt, answer: string): Promise<ReferenceScore> {
    const [promptIds, completionIds] = await Promise.all([
      prompt.text !== undefined
        ? this.#client.tokenizeText(prompt.text, true)
        : this.#client.tokenizeChat(prompt.messages, prompt.tools),
      answer === "" ? Promise.resolve([]) : this.#client.tokenizeText(answer),
    ]);
    if (completionIds.length === 0) return { tokens: 0, meanLogprob: Number.NaN, topKShare: Number.NaN };
    const body = await this.#client.echoLogprobs([...promptIds, ...completionIds], this.#topK);
    const r = scoreEcho(body, promptIds.length, completionIds.length, this.#topK);
    if (!r.ok) throw new ReferenceServerError(r.reason);
    return r.score;
  }

  /** The reference's own answer to `prompt` (temperature 0, its seed and max_tokens). Throws like `score`. */
  answer(prompt: AuditPrompt): Promise<string> {
    return prompt.text !== undefined
      ? this.#client.complete(prompt.text, prompt.maxTokens, prompt.seed)
      : this.#client.chat(prompt.messages, prompt.maxTokens, prompt.seed);
  }

  /**
   * The reference's vectors for `inputs` (a model that serves embeddings;
   * no calibration: vectors are compared directly). Throws ReferenceServerError.
   */
  embed(inputs: readonly string[]): Promise<number[][]> {
    return this.#client.embeddings(inputs);
  }

  /**
   * Calibrates now for audits of `form` (default chat): the reference
   * answers each calibration prompt (as a text completion of its messages'
   * texts for "text"), each answer is scored, and marks are drawn from the
   * scores. When too few succeed, the previous marks stay. Never throws.
   */
  calibrate(form: PromptForm = "chat"): Promise<CalibrationReport> {
    const state = this.#forms[form];
    if (state.running !== undefined) return state.running;
    const run = this.#runCalibration(form).finally(() => {
      state.running = undefined;
    });
    state.running = run;
    return run;
  }

  /**
   * Judges one audit answer: calibrates first when due, then scores the
   * answer against the marks. Never throws: every reference failure, and
   * the lack of marks, is an unverifiable judgement.
   */
  async judge(prompt: AuditPrompt, answer: string): Promise<Judgement> {
    const form: PromptForm = prompt.text !== undefined ? "text" : "chat";
    const state = this.#forms[form];
    if (this.#opts.now() >= state.nextAtMs) await this.calibrate(form);
    const marks = state.thresholds;
    if (marks === undefined) {
      const why = state.last?.errors[0] ?? "no calibration sample";
      return unverifiable(`reference not calibrated (${why})`);
    }
    try {
      return judgeReferenceScore(await this.score(prompt, answer), marks, this.#policy);
    } catch (err) {
      return unverifiable(`reference failed: ${message(err)}`);
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.#forms.chat.running, this.#forms.text.running]);
    await this.#client.close();
  }

  async #runCalibration(form: PromptForm): Promise<CalibrationReport> {
    const state = this.#forms[form];
    const samples: ReferenceScore[] = [];
    const errors: string[] = [];
    let prompts: readonly AuditPrompt[] = [];
    try {
      const text = this.#opts.textCalibrationPrompts;
      if (form === "text" && text !== undefined) prompts = text();
      else prompts = this.#opts.calibrationPrompts();
      if (form === "text")
        prompts = prompts.map((p) => ({ ...p, text: p.text ?? completionTextOf(p.messages) }));
    } catch (err) {
      errors.push(`calibration prompts: ${message(err)}`);
    }
    // One at a time: calibration is background work and must not crowd out audits.
    for (const p of prompts) {
      try {
        samples.push(await this.score(p, await this.answer(p)));
      } catch (err) {
        errors.push(message(err));
      }
    }
    const marks = calibrateThresholds(samples, this.#policy);
    if (marks === undefined && errors.length === 0) {
      const usable = usableSamples(samples, this.#policy).length;
      errors.push(`${usable} usable answers of ${prompts.length} (need ${this.#policy.minSamples})`);
    }
    const now = this.#opts.now();
    if (marks !== undefined) state.thresholds = marks;
    state.nextAtMs =
      now +
      (marks !== undefined
        ? (this.#opts.recalibrateMs ?? DEFAULT_RECALIBRATE_MS)
        : (this.#opts.calibrationRetryMs ?? DEFAULT_CALIBRATION_RETRY_MS));
    const report: CalibrationReport = { atMs: now, samples, errors, thresholds: state.thresholds };
    state.last = report;
    return report;
  }
}

/** One line for the log about a calibration. */
export function describeCalibration(model: string, r: CalibrationReport): string {
  const t = r.thresholds;
  const marks =
    t === undefined
      ? "no marks yet"
      : `marks: mean logprob >= ${fmt(t.minMeanLogprob)}, top-k share >= ${fmt(t.minTopKShare)}`;
  return `reference ${model} calibrated on ${r.samples.length} answers (${r.errors.length} errors); ${marks}`;
}
