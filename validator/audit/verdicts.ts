/**
 * Audit history and the verdict it adds up to, per (miner hotkey, model).
 *
 * The latest *conclusive* audit decides: after a failed audit the model is
 * `failed` until a later audit passes, and after a passed one `verified`
 * until a later one fails; unverifiable audits (no reference, too few
 * peers, a prompt the model cannot answer) change nothing. A model offered
 * as several kinds (chat, completions, embeddings) is audited as each, and
 * each kind keeps its own latest conclusive audit: the model is `failed`
 * while any kind's is, so honest chat answers cannot clear filler vectors. With no
 * conclusive audit the verdict is `unverifiable`. A failed model earns the
 * hotkey no business points for it (scoring.ts) and, reported to routers
 * (ProbeService.ReportVerdicts), no user traffic for it.
 */

import { MODEL_KINDS, type ModelKind } from "../../common/request-kinds.js";
import { type ModelVerdict, Verdict as ProtoVerdict } from "../../gen/tensorclaw/v1/probe.js";
import type { AuditOutcome, JudgeName } from "./judgement.js";

/** Audits kept per (hotkey, model); the counts cover these. */
export const AUDIT_HISTORY_SIZE = 100;

/** One judged audit, as the validator keeps it. */
export interface AuditRecord {
  /** When the audit was judged (Unix ms). */
  readonly atMs: number;
  readonly hotkey: string;
  readonly model: string;
  readonly outcome: AuditOutcome;
  readonly judge: JudgeName;
  /** The judge's numbers and reason. */
  readonly detail: string;
  /** The kind of request the audit went as; absent: chat (also every record of earlier validators). */
  readonly kind?: ModelKind;
}

/** The standing of one (hotkey, model). */
export type Verdict = "verified" | "failed" | "unverifiable";

/** One (hotkey, model)'s verdict and the counts behind it. */
export interface AuditVerdict {
  readonly hotkey: string;
  readonly model: string;
  readonly verdict: Verdict;
  /** Audits kept (at most {@link AUDIT_HISTORY_SIZE}). */
  readonly audits: number;
  readonly passed: number;
  readonly failed: number;
  /** Newest audit, conclusive or not (Unix ms). */
  readonly lastAuditAtMs: number;
  /** The deciding audit (the latest conclusive one); undefined when none. */
  readonly decidedBy: AuditRecord | undefined;
}

const OUTCOMES: readonly AuditOutcome[] = ["passed", "failed", "unverifiable"];
const JUDGES: readonly JudgeName[] = ["reference", "agreement", "graded"];
/** Detail kept per stored record, so a chatty judge cannot bloat the store. */
export const MAX_DETAIL_CHARS = 300;

/** Parses a stored audit record; undefined when it is not one (never trusted blindly). */
export function parseAuditRecord(x: unknown): AuditRecord | undefined {
  if (typeof x !== "object" || x === null) return undefined;
  const r = x as Record<string, unknown>;
  if (
    typeof r.atMs !== "number" ||
    !Number.isFinite(r.atMs) ||
    typeof r.hotkey !== "string" ||
    r.hotkey === "" ||
    typeof r.model !== "string" ||
    r.model === "" ||
    !OUTCOMES.includes(r.outcome as AuditOutcome) ||
    !JUDGES.includes(r.judge as JudgeName) ||
    typeof r.detail !== "string" ||
    (r.kind !== undefined && !MODEL_KINDS.includes(r.kind as ModelKind))
  ) {
    return undefined;
  }
  return {
    atMs: r.atMs,
    hotkey: r.hotkey,
    model: r.model,
    outcome: r.outcome as AuditOutcome,
    judge: r.judge as JudgeName,
    detail: r.detail.slice(0, MAX_DETAIL_CHARS),
    ...(r.kind === undefined || r.kind === "chat" ? {} : { kind: r.kind as ModelKind }),
  };
}

/**
 * The verdict of one (hotkey, model) from its audits (any order; sorted by
 * time, ties kept in the given order). Only the newest
 * {@link AUDIT_HISTORY_SIZE} count.
 */
export function verdictOf(hotkey: string, model: string, records: readonly AuditRecord[]): AuditVerdict {
  const sorted = records
    .map((r, i) => ({ r, i }))
    .sort((a, b) => a.r.atMs - b.r.atMs || a.i - b.i)
    .map(({ r }) => r)
    .slice(-AUDIT_HISTORY_SIZE);
  let passed = 0;
  let failed = 0;
  /** The latest conclusive audit of each kind. */
  const latest = new Map<ModelKind, AuditRecord>();
  let newest: AuditRecord | undefined;
  for (const r of sorted) {
    if (r.outcome === "passed") passed++;
    else if (r.outcome === "failed") failed++;
    else continue;
    latest.set(r.kind ?? "chat", r);
    newest = r;
  }
  // A kind whose latest conclusive audit failed decides, the newest such; else the newest audit.
  const failing = [...latest.values()].filter((r) => r.outcome === "failed");
  const decidedBy = failing.length > 0 ? failing.sort((a, b) => a.atMs - b.atMs).at(-1) : newest;
  const verdict: Verdict =
    decidedBy === undefined ? "unverifiable" : decidedBy.outcome === "failed" ? "failed" : "verified";
  return {
    hotkey,
    model,
    verdict,
    audits: sorted.length,
    passed,
    failed,
    lastAuditAtMs: sorted.at(-1)?.atMs ?? 0,
    decidedBy,
  };
}

/** Every (hotkey, model)'s verdict from a flat audit history, sorted by hotkey, then model. */
export function auditVerdicts(records: readonly AuditRecord[]): AuditVerdict[] {
  const groups = new Map<string, Map<string, AuditRecord[]>>();
  for (const r of records) {
    let byModel = groups.get(r.hotkey);
    if (byModel === undefined) {
      byModel = new Map();
      groups.set(r.hotkey, byModel);
    }
    const list = byModel.get(r.model);
    if (list === undefined) byModel.set(r.model, [r]);
    else list.push(r);
  }
  const out: AuditVerdict[] = [];
  for (const [hotkey, byModel] of groups) {
    for (const [model, list] of byModel) out.push(verdictOf(hotkey, model, list));
  }
  return out.sort((a, b) => compare(a.hotkey, b.hotkey) || compare(a.model, b.model));
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The failed models of each hotkey (hotkeys with none are left out), for scoring. */
export function failedModelsByHotkey(verdicts: readonly AuditVerdict[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const v of verdicts) {
    if (v.verdict !== "failed") continue;
    const list = out.get(v.hotkey);
    if (list === undefined) out.set(v.hotkey, [v.model]);
    else list.push(v.model);
  }
  return out;
}

/** The wire value of a verdict, for ProbeService.ReportVerdicts. */
export function verdictToProto(v: Verdict): ProtoVerdict {
  switch (v) {
    case "verified":
      return ProtoVerdict.VERDICT_VERIFIED;
    case "failed":
      return ProtoVerdict.VERDICT_FAILED;
    case "unverifiable":
      return ProtoVerdict.VERDICT_UNVERIFIABLE;
  }
}

/** One verdict as ProbeService.ReportVerdicts takes it (detail: the deciding audit's). */
export function verdictMessage(v: AuditVerdict): ModelVerdict {
  return {
    hotkey: v.hotkey,
    model: v.model,
    verdict: verdictToProto(v.verdict),
    detail: v.decidedBy === undefined ? "no conclusive audit" : `${v.decidedBy.judge}: ${v.decidedBy.detail}`,
  };
}
