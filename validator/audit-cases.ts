/**
 * Audit cases: one audit prompt per model, answered by every miner of that
 * model, each at its own next audit (so the audits still arrive at each
 * miner's independent random times), then judged together by the miners'
 * agreement with each other, which needs several answers to the very same
 * deterministic prompt.
 *
 * A model with a reference server is judged answer by answer, so there each
 * miner gets a prompt of its own (`alone`): a prompt that reaches several
 * miners is a tell that miners comparing what they receive could use to
 * spot audits, answering those honestly and the users with anything.
 * A model that serves only embeddings is audited the same way, on its
 * vectors for the prompt's messages (`kind` "embedding").
 * Pure bookkeeping: times come in, judging happens outside.
 */
import type { ModelKind } from "../common/request-kinds.js";
import type { TokenLogprob } from "../gen/tensorclaw/v1/chat.js";

/** A prompt with exactly one right answer, and how to grade an answer to it. */
export interface GradedPrompt {
  readonly expected: string;
  grade(answer: string): boolean;
}

/**
 * What an audit judges, by the kind of request it went as: a chat answer;
 * a text completion (the router sends the messages' texts as one prompt);
 * or embedding vectors (the router sends the messages as inputs).
 */
export type AuditKind = ModelKind;

/** One miner's answer to an audit. */
export interface AuditAnswer {
  readonly hotkey: string;
  /** Liveness passed and the answer finished cleanly. */
  readonly ok: boolean;
  readonly content: string;
  readonly logprobs: readonly TokenLogprob[];
  /** The vectors of an embeddings audit, in input order; absent or empty for chat. */
  readonly vectors?: readonly (readonly number[])[];
  readonly atMs: number;
}

/** One audit prompt of one model and the answers it collected. */
export interface AuditCase {
  readonly id: number;
  readonly model: string;
  readonly kind: AuditKind;
  /** The OpenAI chat body every miner of the model gets (deterministic: temperature 0, fixed seed). */
  readonly body: Readonly<Record<string, unknown>>;
  readonly graded: GradedPrompt | undefined;
  readonly openedAtMs: number;
  /** Miners sent this case whose answer has not come back yet. */
  readonly pending: ReadonlySet<string>;
  readonly answers: ReadonlyMap<string, AuditAnswer>;
}

interface MutableCase extends AuditCase {
  readonly pending: Set<string>;
  readonly answers: Map<string, AuditAnswer>;
}

/** Settings of the book. */
export interface AuditCasesOptions {
  /** A case older than this closes even if some miners never answered it. */
  readonly maxAgeMs: number;
  /** A sent audit whose answer never came back stops holding its case open after this. */
  readonly pendingTimeoutMs: number;
  /** Models whose miners each get a prompt of their own (judged one by one); default none. */
  readonly alone?: (model: string) => boolean;
}

/** What a new case is made of. */
export interface AuditPrompt {
  readonly body: Readonly<Record<string, unknown>>;
  readonly graded?: GradedPrompt;
}

/** The open audit cases of every model. */
export class AuditCases {
  readonly #opts: AuditCasesOptions;
  readonly #open: MutableCase[] = [];
  readonly #sentAt = new Map<string, number>();
  /** Cases made for one miner alone: closed once it answered. */
  readonly #alone = new Set<number>();
  #nextId = 1;

  constructor(opts: AuditCasesOptions) {
    this.#opts = opts;
  }

  /**
   * The case `hotkey` should answer next for `model` audited as `kind`: the
   * oldest open one it has not been sent, else a new one made by `make`;
   * always a new one for a model judged alone. Marks it as sent.
   */
  take(
    model: string,
    hotkey: string,
    nowMs: number,
    make: () => AuditPrompt,
    kind: AuditKind = "chat",
  ): AuditCase {
    const alone = this.#opts.alone?.(model) === true;
    let c = alone
      ? undefined
      : this.#open.find(
          (x) =>
            x.model === model &&
            x.kind === kind &&
            !this.#alone.has(x.id) &&
            !x.answers.has(hotkey) &&
            !x.pending.has(hotkey),
        );
    if (c === undefined) {
      const p = make();
      c = {
        id: this.#nextId++,
        model,
        kind,
        body: p.body,
        graded: p.graded,
        openedAtMs: nowMs,
        pending: new Set(),
        answers: new Map(),
      };
      this.#open.push(c);
      if (alone) this.#alone.add(c.id);
    }
    c.pending.add(hotkey);
    this.#sentAt.set(`${c.id}\n${hotkey}`, nowMs);
    return c;
  }

  /** Records a miner's answer to a case it was sent (ignored otherwise, or once closed). */
  answer(caseId: number, answer: AuditAnswer): void {
    const c = this.#open.find((x) => x.id === caseId);
    if (c === undefined || !c.pending.delete(answer.hotkey)) return;
    this.#sentAt.delete(`${caseId}\n${answer.hotkey}`);
    c.answers.set(answer.hotkey, answer);
  }

  /** Forgets a sent audit that was not probed after all (router error): the miner may get it again. */
  withdraw(caseId: number, hotkey: string): void {
    const at = this.#open.findIndex((x) => x.id === caseId);
    const c = this.#open[at];
    c?.pending.delete(hotkey);
    this.#sentAt.delete(`${caseId}\n${hotkey}`);
    // A case of one miner's own that it will never answer is dropped: nobody else would.
    if (c !== undefined && this.#alone.delete(caseId)) this.#open.splice(at, 1);
  }

  /**
   * Removes and returns the cases ready to judge: every miner now serving
   * the model as the case's kind (`serving`) answered, or the case reached
   * its maximum age; never while an answer is still expected, unless that
   * one is overdue.
   */
  closeDue(nowMs: number, serving: (model: string, kind: AuditKind) => readonly string[]): AuditCase[] {
    const out: AuditCase[] = [];
    for (let i = this.#open.length - 1; i >= 0; i--) {
      const c = this.#open[i] as MutableCase;
      for (const hk of [...c.pending]) {
        const sent = this.#sentAt.get(`${c.id}\n${hk}`) ?? 0;
        if (nowMs - sent > this.#opts.pendingTimeoutMs) this.withdraw(c.id, hk);
      }
      // Withdrawn from its one miner: dropped.
      if (this.#open[i] !== c || c.pending.size > 0) continue;
      const everyone = this.#alone.has(c.id) || serving(c.model, c.kind).every((hk) => c.answers.has(hk));
      const old = nowMs - c.openedAtMs >= this.#opts.maxAgeMs;
      if ((everyone && c.answers.size > 0) || old) {
        this.#open.splice(i, 1);
        this.#alone.delete(c.id);
        out.push(c);
      }
    }
    return out.reverse();
  }

  /** Open cases (for logs and tests). */
  get open(): readonly AuditCase[] {
    return this.#open;
  }
}
