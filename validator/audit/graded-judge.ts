/**
 * Judging answers to prompts with one right answer (arithmetic, spelling,
 * extraction; written by the probe generator together with its grader).
 *
 * A wrong answer only proves something when the model itself gets the
 * prompt right: a small model cannot do arithmetic, and its honest miners
 * must not fail for that. So a graded audit is conclusive only when the
 * model demonstrably answers it right:
 * - reference mode: the reference server's own answer (temperature 0, same
 *   seed and `max_tokens`) grades right;
 * - agreement mode: a strict majority of the *other* miners serving the
 *   model grade right, and there are at least two of them (the same
 *   three-answer minimum as agreement-judge.ts).
 * Then a wrong miner answer fails and a right one passes; otherwise the
 * audit is unverifiable.
 */
import { type Judgement, unverifiable } from "./judgement.js";

/** A prompt with one right answer. */
export interface GradedPrompt {
  /** The right answer, for details and logs. */
  readonly expected: string;
  /** True when `answer` is right (the generator decides how strict: exact, normalised, contained). */
  grade(answer: string): boolean;
}

/** What shows the model can answer the prompt. */
export type GradedEvidence =
  /** The reference server's answer; undefined when it could not be had. */
  | { readonly kind: "reference"; readonly answer: string | undefined }
  /** The other miners' answers to the same prompt (not the judged one's). */
  | { readonly kind: "peers"; readonly answers: readonly string[] };

/** Fewest other miners whose majority can show the model answers a prompt. */
export const MIN_GRADED_PEERS = 2;

// A grader is code from elsewhere: one that throws decides nothing.
function safeGrade(prompt: GradedPrompt, answer: string): boolean | undefined {
  try {
    return prompt.grade(answer) === true;
  } catch {
    return undefined;
  }
}

function shown(expected: string): string {
  const s = JSON.stringify(expected);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** Judges one miner's answer to a graded prompt (pure; see the module comment). */
export function judgeGraded(prompt: GradedPrompt, answer: string, evidence: GradedEvidence): Judgement {
  let why: string;
  if (evidence.kind === "reference") {
    if (evidence.answer === undefined) return unverifiable("graded: no reference answer");
    if (safeGrade(prompt, evidence.answer) !== true) {
      return unverifiable("graded: the reference model itself does not answer it right");
    }
    why = "the reference answers it right";
  } else {
    const peers = evidence.answers.length;
    if (peers < MIN_GRADED_PEERS) {
      return unverifiable(`graded: ${peers} other answers (need ${MIN_GRADED_PEERS})`);
    }
    const right = evidence.answers.filter((a) => safeGrade(prompt, a) === true).length;
    if (right * 2 <= peers) {
      return unverifiable(`graded: only ${right} of ${peers} other miners answer it right`);
    }
    why = `${right} of ${peers} other miners answer it right`;
  }
  const ok = safeGrade(prompt, answer);
  if (ok === undefined) return unverifiable("graded: the grader failed on this answer");
  return ok
    ? { outcome: "passed", detail: `graded right (${why})` }
    : { outcome: "failed", detail: `graded wrong, expected ${shown(prompt.expected)} (${why})` };
}

/**
 * Judges every miner's answer to one graded prompt for one model. In
 * agreement mode (`referenceAnswer` absent) each miner's evidence is the
 * other miners' answers; a hotkey answering twice counts once.
 */
export function judgeGradedGroup(
  prompt: GradedPrompt,
  answers: readonly { readonly hotkey: string; readonly text: string }[],
  reference?: { readonly answer: string | undefined },
): Map<string, Judgement> {
  const byHotkey = new Map<string, string>();
  for (const a of answers) if (!byHotkey.has(a.hotkey)) byHotkey.set(a.hotkey, a.text);
  const out = new Map<string, Judgement>();
  for (const [hk, text] of byHotkey) {
    const evidence: GradedEvidence =
      reference !== undefined
        ? { kind: "reference", answer: reference.answer }
        : { kind: "peers", answers: [...byHotkey].filter(([other]) => other !== hk).map(([, t]) => t) };
    out.set(hk, judgeGraded(prompt, text, evidence));
  }
  return out;
}
