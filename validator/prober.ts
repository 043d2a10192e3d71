/**
 * One probe of one miner, as the validator writes it: a model the miner
 * offers, drawn uniformly; a chat request whose shape is sampled from the
 * live traffic shape the router publishes and whose content comes from the
 * operator's private corpus or the built-in generator; and, for a share of
 * probes (`--verify-share`), an audit — the model's current audit case,
 * answered in full and judged later — instead of a liveness probe that the
 * router cuts after five tokens. A miner cannot tell which it got until
 * the cut comes (or does not). Each probe goes as one of the kinds of
 * request the model is offered as, drawn per probe; probes sent as
 * embeddings or text completions are worded as that kind (kind-texts.ts),
 * and an audit is judged as the kind it went as.
 */
import type { Logger } from "../common/logger.js";
import { kindFromProto, kindsFromProto, MODEL_KINDS, type ModelKind } from "../common/request-kinds.js";
import { type MinerSession, MinerState } from "../gen/tensorclaw/v1/directory.js";
import type { GetTrafficShapeResponse } from "../gen/tensorclaw/v1/probe.js";
import type { AuditCases } from "./audit-cases.js";
import type { ProbeCorpus } from "./probe-gen/corpus.js";
import { completionProbeMessages, embeddingProbeMessages } from "./probe-gen/kind-texts.js";
import { drawProbeBody } from "./probe-gen/shape-sampler.js";
import type { ProbeOptions, ProbeOutcome } from "./router-client.js";

/** The seed's liveness rule: five content tokens, then the request is cut as a user would. */
export const LIVENESS_CUT_TOKENS = 5;
/** How often the traffic shape is read again. */
export const SHAPE_REFRESH_MS = 5 * 60_000;

/** The router calls a prober makes. */
export interface ProberRouter {
  probe(hotkey: string, opts: ProbeOptions): Promise<ProbeOutcome>;
  /** The router's traffic shape; absent or throwing means "use the built-in mix". */
  trafficShape?(): Promise<GetTrafficShapeResponse>;
}

/** Settings of the prober. */
export interface ProberSettings {
  /** Share of probes that are audits, in [0, 1]. */
  readonly verifyShare: number;
  /** How long the router may take to report a liveness probe (ms). */
  readonly livenessTimeoutMs: number;
  /** How long the router may take to report an audit, which runs to the end of the answer (ms). */
  readonly auditTimeoutMs: number;
  /** The operator's private prompts (`--probe-corpus`); absent: the built-in generator. */
  readonly corpus?: ProbeCorpus | undefined;
  /** Plausible `user` values this validator sends when a shape has one. */
  readonly userPool: readonly string[];
}

/** What the prober needs. */
export interface ProberDeps {
  readonly router: ProberRouter;
  readonly cases: AuditCases;
  readonly settings: ProberSettings;
  readonly random: () => number;
  /** Unix ms. */
  readonly clock: () => number;
  readonly logger: Logger;
}

/**
 * The models `hotkey` offers on sessions that may be probed (active or
 * ghost), each with every kind of request any of those sessions offers it
 * as (DirectoryModel.kinds; kinds this build does not know are left out).
 */
export function offeredKinds(
  sessions: readonly MinerSession[],
  hotkey: string,
): Map<string, readonly ModelKind[]> {
  const out = new Map<string, Set<ModelKind>>();
  for (const s of sessions) {
    if (s.hotkey !== hotkey) continue;
    if (s.state !== MinerState.MINER_STATE_ACTIVE && s.state !== MinerState.MINER_STATE_GHOST) continue;
    for (const m of s.models) {
      const kinds = out.get(m.id) ?? new Set<ModelKind>();
      for (const k of kindsFromProto(m.kinds)) kinds.add(k);
      out.set(m.id, kinds);
    }
  }
  return new Map([...out].map(([model, kinds]) => [model, MODEL_KINDS.filter((k) => kinds.has(k))]));
}

/**
 * Models a hotkey offers on sessions that may be probed, sorted. Every
 * model is probed, as each kind it is offered as.
 */
export function probeableModels(sessions: readonly MinerSession[], hotkey: string): string[] {
  return [...offeredKinds(sessions, hotkey).keys()].sort();
}

/** Plans, sends and books probes. */
export class Prober {
  readonly #d: ProberDeps;
  #shape: GetTrafficShapeResponse | undefined;
  #shapeReadAtMs = Number.NEGATIVE_INFINITY;

  constructor(deps: ProberDeps) {
    this.#d = deps;
  }

  /** The traffic shape probes are drawn from (read again every SHAPE_REFRESH_MS). */
  async refreshShape(): Promise<void> {
    const now = this.#d.clock();
    if (now - this.#shapeReadAtMs < SHAPE_REFRESH_MS || this.#d.router.trafficShape === undefined) return;
    this.#shapeReadAtMs = now;
    try {
      this.#shape = await this.#d.router.trafficShape();
    } catch (err) {
      // Keep the last shape: the built-in mix only until a router has told us better.
      this.#d.logger.warn(
        { err: err instanceof Error ? err.message : String(err) },
        "traffic shape unavailable",
      );
    }
  }

  /** Probes `hotkey` once: a liveness probe or, for a share of probes, an audit. */
  async probe(hotkey: string, sessions: readonly MinerSession[]): Promise<ProbeOutcome> {
    const { random, settings, cases } = this.#d;
    const models = probeableModels(sessions, hotkey);
    const model = models[Math.min(models.length - 1, Math.floor(random() * models.length))] ?? "";
    // Each kind the model is offered as is probed and audited, so none of what users get goes unchecked.
    const kinds = offeredKinds(sessions, hotkey).get(model) ?? [];
    const kind =
      kinds.length > 1 ? kinds[Math.min(kinds.length - 1, Math.floor(random() * kinds.length))] : kinds[0];
    const audit = model !== "" && random() < settings.verifyShare && kind !== undefined;
    const draw = (asAudit: boolean) => {
      const p = drawProbeBody({
        shapes: this.#shape,
        model,
        random,
        source: settings.corpus,
        audit: asAudit,
        userPool: settings.userPool,
        verifyShare: settings.verifyShare,
        // A graded prompt's text (arithmetic, spelling...) only ever comes in audits, and only a
        // chat answer is graded (vectors have no right answer; a raw completion of a question need
        // not answer it): other audits take none, so they read like any probe of their kind.
        ...(kind !== undefined && kind !== "chat" ? { gradedShare: 0 } : {}),
      });
      // The words of the kind it goes as: chat messages would read like no embeddings or completions input.
      if (kind === "embedding") p.body.messages = embeddingProbeMessages(random, settings.corpus);
      else if (kind === "completion" && settings.corpus === undefined)
        p.body.messages = completionProbeMessages(random);
      return p;
    };
    if (!audit) {
      return this.#d.router.probe(hotkey, {
        model,
        body: draw(false).body,
        cutAfterTokens: LIVENESS_CUT_TOKENS,
        timeoutMs: settings.livenessTimeoutMs,
        ...(kind === undefined ? {} : { kind }),
      });
    }
    const c = cases.take(
      model,
      hotkey,
      this.#d.clock(),
      () => {
        const p = draw(true);
        return p.graded === undefined ? { body: p.body } : { body: p.body, graded: p.graded };
      },
      kind,
    );
    let outcome: ProbeOutcome;
    try {
      outcome = await this.#d.router.probe(hotkey, {
        model,
        body: { ...c.body },
        cutAfterTokens: 0,
        timeoutMs: settings.auditTimeoutMs,
        kind,
      });
    } catch (err) {
      cases.withdraw(c.id, hotkey);
      throw err;
    }
    if (outcome.kind !== "probed") {
      cases.withdraw(c.id, hotkey);
      return outcome;
    }
    const r = outcome.response;
    // Judged only as what it went as: a router older than ProbeRequest.kind sends its default kind.
    if ((kindFromProto(r.kind) ?? kinds[0]) !== kind) {
      cases.withdraw(c.id, hotkey);
      return outcome;
    }
    cases.answer(c.id, {
      hotkey,
      ok: r.ok && !r.ghost && !r.cut,
      content: r.content,
      logprobs: r.logprobs,
      vectors: r.embeddings.map((e) => e.values),
      atMs: this.#d.clock(),
    });
    return outcome;
  }
}
