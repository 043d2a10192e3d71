/**
 * Judges one closed audit case with the judge its model has: a graded
 * prompt by its one right answer (conclusive only when the reference or
 * the peers show the model can answer it), otherwise the reference server
 * answer by answer when the model has one (`--reference`), otherwise the
 * agreement of the miners that answered the same prompt. A text-completion
 * audit is judged like a chat answer, on the one prompt the router sent;
 * the vectors of an embeddings audit are judged the same two ways
 * (embedding-judge.ts).
 */

import { judgeAgreement } from "./audit/agreement-judge.js";
import { judgeEmbeddingAgreement, judgeEmbeddingsByReference } from "./audit/embedding-judge.js";
import { judgeGradedGroup } from "./audit/graded-judge.js";
import { type Judgement, type JudgeName, unverifiable } from "./audit/judgement.js";
import { completionTextOf, embeddingInputsOf } from "./audit/probe-forms.js";
import type { ChatMessageJson } from "./audit/reference-client.js";
import type { AuditPrompt } from "./audit/reference-judge.js";
import type { AuditRecord } from "./audit/verdicts.js";
import type { AuditAnswer, AuditCase, AuditKind } from "./audit-cases.js";

/** What judging needs of a reference judge (a ReferenceJudge has it). */
export interface ReferenceJudging {
  judge(prompt: AuditPrompt, answer: string): Promise<Judgement>;
  answer(prompt: AuditPrompt): Promise<string>;
  /** The reference's vectors for `inputs`, in order; absent: it cannot judge embeddings. */
  embed?(inputs: readonly string[]): Promise<number[][]>;
}

/**
 * `max_tokens` the reference answers with for an audit body that gave none
 * (the router injects no limit: the miner's backend answers with its own).
 */
const FALLBACK_MAX_TOKENS = 512;

/**
 * The audit prompt of a case, as the reference judge needs it; for a model
 * probed as text completions, with the one prompt the router sent it.
 */
export function auditPromptOf(
  body: Readonly<Record<string, unknown>>,
  kind: AuditKind = "chat",
): AuditPrompt {
  const messages = Array.isArray(body.messages) ? (body.messages as ChatMessageJson[]) : [];
  const asked = body.max_tokens ?? body.max_completion_tokens;
  const tools = Array.isArray(body.tools) ? (body.tools as ChatMessageJson[]) : [];
  return {
    messages,
    maxTokens: typeof asked === "number" && asked > 0 ? asked : FALLBACK_MAX_TOKENS,
    seed: typeof body.seed === "number" ? body.seed : 0,
    ...(tools.length > 0 ? { tools } : {}),
    ...(kind === "completion" ? { text: completionTextOf(body.messages) } : {}),
  };
}

/** The judgements of an embeddings case's clean answers, and which judge gave them. */
async function judgeVectors(
  c: AuditCase,
  answers: readonly AuditAnswer[],
  reference: ReferenceJudging | undefined,
): Promise<{ judge: JudgeName; judged: Map<string, Judgement> }> {
  const judged = new Map<string, Judgement>();
  // A clean embeddings answer always has vectors (the router checks); none means nothing to judge.
  for (const a of answers) {
    if ((a.vectors ?? []).length === 0) judged.set(a.hotkey, unverifiable("no vectors"));
  }
  const peers = answers
    .filter((a) => !judged.has(a.hotkey))
    .map((a) => ({ hotkey: a.hotkey, vectors: a.vectors ?? [] }));
  if (reference === undefined) {
    for (const [hk, j] of judgeEmbeddingAgreement(peers)) judged.set(hk, j);
    return { judge: "agreement", judged };
  }
  let refVectors: number[][] | undefined;
  let why = "the reference serves no embeddings";
  if (reference.embed !== undefined) {
    try {
      refVectors = await reference.embed(embeddingInputsOf(c.body.messages));
    } catch (err) {
      why = `reference failed: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  for (const p of peers) {
    judged.set(
      p.hotkey,
      refVectors === undefined
        ? { outcome: "unverifiable", detail: why }
        : judgeEmbeddingsByReference(p.vectors, refVectors),
    );
  }
  return { judge: "reference", judged };
}

/**
 * The records of one case: one per miner that answered cleanly. Miners
 * whose probe failed are not judged here (the probe itself failed them);
 * an empty answer is unverifiable.
 */
export async function judgeCase(
  c: AuditCase,
  reference: ReferenceJudging | undefined,
  nowMs: number,
): Promise<AuditRecord[]> {
  const answers = [...c.answers.values()].filter((a) => a.ok);
  if (c.kind === "embedding") {
    const { judge, judged } = await judgeVectors(c, answers, reference);
    return recordsOf(c, judge, judged, nowMs);
  }
  const judged = new Map<string, Judgement>();
  const empty = answers.filter((a) => a.content.trim() === "");
  for (const a of empty) judged.set(a.hotkey, { outcome: "unverifiable", detail: "empty answer" });
  const texts = answers
    .filter((a) => a.content.trim() !== "")
    .map((a) => ({ hotkey: a.hotkey, text: a.content }));
  const prompt = auditPromptOf(c.body, c.kind);
  let judge: JudgeName;
  if (c.graded !== undefined) {
    judge = "graded";
    let refAnswer: { answer: string | undefined } | undefined;
    if (reference !== undefined) {
      refAnswer = { answer: await reference.answer(prompt).catch(() => undefined) };
    }
    for (const [hk, j] of judgeGradedGroup(c.graded, texts, refAnswer)) judged.set(hk, j);
  } else if (reference !== undefined) {
    judge = "reference";
    const results = await Promise.all(texts.map((t) => reference.judge(prompt, t.text)));
    for (const [i, t] of texts.entries()) judged.set(t.hotkey, results[i] as Judgement);
  } else {
    judge = "agreement";
    for (const [hk, j] of judgeAgreement(texts)) judged.set(hk, j);
  }
  return recordsOf(c, judge, judged, nowMs);
}

function recordsOf(
  c: AuditCase,
  judge: JudgeName,
  judged: ReadonlyMap<string, Judgement>,
  nowMs: number,
): AuditRecord[] {
  return [...judged].map(([hotkey, j]) => ({
    atMs: nowMs,
    hotkey,
    model: c.model,
    outcome: j.outcome,
    judge,
    detail: j.detail,
    // Chat records stay as earlier validators wrote them.
    ...(c.kind === "chat" ? {} : { kind: c.kind }),
  }));
}
