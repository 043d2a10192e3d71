import type { Chain, ExtrinsicOutcome, Metagraph } from "../common/chain/chain.js";
import type { Clock } from "../common/clock.js";
import type { Logger } from "../common/logger.js";
import { textSeededRandom } from "../common/seeded-random.js";
import type { ListMinersResponse, MinerSession } from "../gen/tensorclaw/v1/directory.js";
import type { ModelVerdict } from "../gen/tensorclaw/v1/probe.js";
import type { GetUsageResponse } from "../gen/tensorclaw/v1/usage.js";
import { type AuditVerdict, auditVerdicts, failedModelsByHotkey, verdictMessage } from "./audit/verdicts.js";
import { type AuditCase, AuditCases, type AuditKind } from "./audit-cases.js";
import { judgeCase, type ReferenceJudging } from "./audit-judge.js";
import type { LatencyTier } from "./latency-tiers.js";
import type { ProbeCorpus } from "./probe-gen/corpus.js";
import { makeUserPool } from "./probe-gen/shape-sampler.js";
import {
  disconnectedMiners,
  failedEntry,
  type ProbeRoundResult,
  type ProbeRouter,
  probedEntry,
  probeTargets,
  runProbeRound,
} from "./probe-round.js";
import { ProbeSchedule } from "./probe-schedule.js";
import { offeredKinds, Prober, type ProberRouter } from "./prober.js";
import { type DirectoryListing, RouterUnreachableError } from "./router-client.js";
import { buildMinerInputs } from "./score-inputs.js";
import { formatScoreTable, type ScoreRow, scoreRows } from "./score-table.js";
import { type MinerScore, scoreMiners } from "./scoring.js";
import type { ValidatorStateStore } from "./state-store.js";
import { computeWeights, padToMinimum, type WeightVector } from "./weights.js";
import type { WeightsAction } from "./weights-plan.js";
import { WeightsStep } from "./weights-step.js";

/** The router calls a validator makes. */
export interface ValidatorRouter extends ProbeRouter, ProberRouter {
  getUsage(windowSeconds?: number): Promise<GetUsageResponse>;
  /** Tells the routers which (miner, model) pairs failed their audits; absent: they are not told. */
  reportVerdicts?(verdicts: readonly ModelVerdict[]): Promise<unknown>;
}

/** Default share of probes that are audits (`--verify-share`). */
export const DEFAULT_VERIFY_SHARE = 0.2;
/**
 * How long the router may take to report an audit, which runs to the end
 * of the answer: a user request's deadline on the router (120 s by
 * default) and some slack.
 */
export const DEFAULT_AUDIT_TIMEOUT_MS = 125_000;

/** Settings the loop needs (from ValidatorConfig). */
export interface ValidatorSettings {
  readonly netuid: number;
  readonly dryRun: boolean;
  readonly probeConcurrency: number;
  readonly probeTimeoutMs: number;
  /** See ProbeRoundOptions.reconnectGraceMs (default RECONNECT_GRACE_MS). */
  readonly reconnectGraceMs?: number;
  readonly probeIntervalMs: number;
  readonly weightsIntervalMs: number;
  readonly latencyTiers: readonly LatencyTier[];
  /** Miners with no probe for this long are forgotten. */
  readonly historyRetentionMs?: number;
  /** Share of probes that are audits (default DEFAULT_VERIFY_SHARE). */
  readonly verifyShare?: number;
  /** See DEFAULT_AUDIT_TIMEOUT_MS. */
  readonly auditTimeoutMs?: number;
  /** The operator's private prompts (`--probe-corpus`); absent: the built-in generator. */
  readonly corpus?: ProbeCorpus;
}

/** Everything the validator touches, injected. */
export interface ValidatorDeps {
  readonly router: ValidatorRouter;
  readonly store: ValidatorStateStore;
  /** Absent: no metagraph, no weights (dry runs and `scores` without --chain). */
  readonly chain: Chain | undefined;
  /** The validator's own hotkey (SS58). */
  readonly selfHotkey: string;
  readonly settings: ValidatorSettings;
  /** Probe and history times, and the loop's waits. */
  readonly clock: Clock;
  readonly randomBytes: (n: number) => Uint8Array;
  /** Uniform in [0, 1): probe times, models, prompts (default Math.random). */
  readonly random?: () => number;
  /** Reference judges by model (`--reference`); a model without one is judged by agreement. */
  readonly references?: ReadonlyMap<string, ReferenceJudging>;
  readonly logger: Logger;
  /** Where tables and plans are printed (stdout). */
  readonly print: (text: string) => void;
}

/** What one scoring pass computed and did. */
export interface ScorePassResult {
  readonly scores: readonly MinerScore[];
  readonly weights: WeightVector;
  readonly rows: readonly ScoreRow[];
  readonly metagraph: Metagraph | undefined;
  /** What the chain state called for (undefined without a chain). */
  readonly actions: readonly WeightsAction[];
  /** Outcomes of what was submitted (empty in dry runs). */
  readonly outcomes: readonly ExtrinsicOutcome[];
}

const SKIP_MESSAGE = "router unreachable, not punishing miners";
const WEEK_MS = 7 * 86_400_000;

/** The validator: probes, audits, scoring passes and weight updates. */
export class Validator {
  readonly #d: ValidatorDeps;
  readonly #weightsStep: WeightsStep | undefined;
  readonly #random: () => number;
  readonly #cases: AuditCases;
  readonly #prober: Prober;
  /** Probes the loop started that have not finished. */
  readonly #inFlight = new Set<Promise<void>>();

  constructor(deps: ValidatorDeps) {
    this.#d = deps;
    this.#random = deps.random ?? Math.random;
    const s = deps.settings;
    const verifyShare = s.verifyShare ?? DEFAULT_VERIFY_SHARE;
    const auditTimeoutMs = s.auditTimeoutMs ?? DEFAULT_AUDIT_TIMEOUT_MS;
    this.#cases = new AuditCases({
      // Long enough that every miner of the model most likely had an audit (e^-4 that one did not).
      maxAgeMs: (4 * s.probeIntervalMs) / Math.max(verifyShare, 0.01),
      pendingTimeoutMs: auditTimeoutMs + 5_000,
      // Judged answer by answer against the reference: no need to show any prompt to two miners.
      alone: (model) => deps.references?.has(model) === true,
    });
    this.#prober = new Prober({
      router: deps.router,
      cases: this.#cases,
      settings: {
        verifyShare,
        livenessTimeoutMs: s.probeTimeoutMs,
        auditTimeoutMs,
        corpus: s.corpus,
        // The same synthetic users on every start, as a real app's users come back.
        userPool: makeUserPool(textSeededRandom(`tensorclaw/v1/probe-users\n${deps.selfHotkey}`)),
      },
      random: this.#random,
      clock: () => deps.clock.now(),
      logger: deps.logger,
    });
    this.#weightsStep =
      deps.chain === undefined
        ? undefined
        : new WeightsStep({
            chain: deps.chain,
            store: deps.store,
            selfHotkey: deps.selfHotkey,
            netuid: deps.settings.netuid,
            dryRun: deps.settings.dryRun,
            randomBytes: deps.randomBytes,
            nowMs: () => deps.clock.now(),
            logger: deps.logger,
            print: deps.print,
          });
  }

  /**
   * Miners with a pass in their kept history: if no router lists them, they
   * get a failed probe. Once every kept probe failed there is nothing left
   * to lose, so they stop getting entries and age out.
   */
  async #known(): Promise<string[]> {
    return [...(await this.#d.store.probeHistory())].filter(([, h]) => h.some((r) => r.ok)).map(([hk]) => hk);
  }

  /**
   * One probe of every connected miner now, stored (the `--once` pass; the
   * loop probes each miner at its own random times instead). Undefined
   * when the round was skipped (router unreachable, or it failed every
   * probe itself): nobody is recorded then, not even miners that no router
   * lists.
   */
  async probeRound(): Promise<ProbeRoundResult | undefined> {
    const { router, store, settings, clock, logger } = this.#d;
    let round: ProbeRoundResult;
    try {
      await this.#prober.refreshShape();
      round = await runProbeRound(router, {
        concurrency: settings.probeConcurrency,
        probe: (hotkey, sessions) => this.#prober.probe(hotkey, sessions),
        clock: () => clock.now(),
        logger,
        known: await this.#known(),
        ...(settings.reconnectGraceMs === undefined ? {} : { reconnectGraceMs: settings.reconnectGraceMs }),
      });
    } catch (err) {
      if (err instanceof RouterUnreachableError) {
        logger.warn({ attempts: err.attempts }, `probe round skipped: ${SKIP_MESSAGE}`);
        return undefined;
      }
      throw err;
    }
    if (round.targets.length > 0 && round.routerErrors.length === round.targets.length) {
      // Every probe failed on the router's side: that is an outage, not a set of ghosts.
      logger.warn({ errors: round.routerErrors.length }, `probe round discarded: ${SKIP_MESSAGE}`);
      return undefined;
    }
    await store.appendProbes(round.entries);
    await this.settleAudits(round.sessions);
    return round;
  }

  /**
   * Judges the audit cases that are complete (every miner serving the
   * model answered, or the case is old), stores the records and tells the
   * routers the verdicts they changed. Returns the judged cases.
   */
  async settleAudits(sessions: readonly MinerSession[]): Promise<readonly AuditCase[]> {
    const { store, clock, logger } = this.#d;
    const serving = (model: string, kind: AuditKind) =>
      probeTargets(sessions).filter((hk) => offeredKinds(sessions, hk).get(model)?.includes(kind) === true);
    const closed = this.#cases.closeDue(clock.now(), serving);
    if (closed.length === 0) return closed;
    const touched = new Set<string>();
    for (const c of closed) {
      const records = await judgeCase(c, this.#d.references?.get(c.model), clock.now());
      await store.appendAudits(records);
      for (const r of records) touched.add(`${r.hotkey}\n${r.model}`);
      logger.info(
        {
          model: c.model,
          answers: c.answers.size,
          outcomes: Object.fromEntries(
            records.map((r) => [r.hotkey, `${r.outcome} (${r.judge}: ${r.detail})`]),
          ),
        },
        "audit judged",
      );
    }
    const verdicts = auditVerdicts(await store.auditHistory()).filter((v) =>
      touched.has(`${v.hotkey}\n${v.model}`),
    );
    await this.#report(verdicts);
    return closed;
  }

  /** Sends verdicts to the routers; one that cannot be told is logged, never fatal. */
  async #report(verdicts: readonly AuditVerdict[]): Promise<void> {
    const { router, logger } = this.#d;
    if (verdicts.length === 0 || router.reportVerdicts === undefined) return;
    try {
      await router.reportVerdicts(verdicts.map(verdictMessage));
    } catch (err) {
      logger.warn({ err: err instanceof Error ? err.message : String(err) }, "routers not told the verdicts");
    }
  }

  /**
   * Scores every known miner from the stored probe history, the audit
   * verdicts and the router's 24 h usage; with a chain, maps hotkeys to
   * uids and (unless `submit` is false or this is a dry run) sets, commits
   * or reveals weights. Every verdict goes to the routers again (a router
   * that restarted has none). Undefined when the router cannot be reached:
   * the pass is skipped, nobody is punished.
   */
  async scorePass(opts: { submit: boolean; print: boolean }): Promise<ScorePassResult | undefined> {
    const { router, store, chain, settings, logger } = this.#d;
    let usage: GetUsageResponse;
    let listing: ListMinersResponse;
    try {
      usage = await router.getUsage(0);
      listing = await router.listMiners();
    } catch (err) {
      if (err instanceof RouterUnreachableError) {
        logger.warn({ attempts: err.attempts }, `scoring pass skipped: ${SKIP_MESSAGE}`);
        if (opts.print) this.#d.print(`scoring skipped: ${SKIP_MESSAGE}\n`);
        return undefined;
      }
      throw err;
    }
    let mg: Metagraph | undefined;
    if (chain !== undefined) {
      try {
        mg = await chain.readMetagraph(settings.netuid);
      } catch (err) {
        logger.error({ err: String(err) }, "cannot read the metagraph: weights are not set this pass");
      }
    }
    const history = await store.probeHistory();
    const verdicts = auditVerdicts(await store.auditHistory());
    await this.#report(verdicts);
    const scores = scoreMiners(
      buildMinerInputs(listing.sessions, history, usage.miners, [], failedModelsByHotkey(verdicts)),
      settings.latencyTiers,
      // A dev router counts free traffic; a production one reports paid tokens apart and only they earn.
      { countFreeTraffic: usage.freeTrafficCounted },
    );
    const uidOf = new Map<string, number>((mg?.neurons ?? []).map((n) => [n.hotkey, n.uid]));
    const finals = scores.map((s) => ({ hotkey: s.hotkey, score: s.final }));
    const weights =
      mg === undefined
        ? computeWeights(finals, uidOf)
        : padToMinimum(
            computeWeights(finals, uidOf),
            mg.neurons.map((n) => n.uid),
            mg.minAllowedWeights,
          );
    // Without a metagraph, show the weights each hotkey would get (by position, not uid).
    const display =
      mg === undefined ? computeWeights(finals, new Map(scores.map((s, i) => [s.hotkey, i]))) : weights;
    const rows = scoreRows(
      scores,
      mg === undefined ? new Map(scores.map((s, i) => [s.hotkey, i])) : uidOf,
      display,
    );
    const shown = mg === undefined ? rows.map((r) => ({ ...r, uid: undefined })) : rows;
    if (opts.print) {
      this.#d.print(formatScoreTable(shown));
      if (mg === undefined) this.#d.print("(no metagraph: uids unknown, weights shown per hotkey)\n");
      if (usage.freeTrafficCounted) {
        this.#d.print("(the router counts free traffic: business includes unpaid tokens, a dev setting)\n");
      }
    }
    logger.info(
      { miners: scores.length, weighted: weights.uids.length, block: mg?.block },
      "scoring pass finished",
    );
    const step =
      mg === undefined || this.#weightsStep === undefined
        ? { actions: [], outcomes: [] }
        : await this.#weightsStep.run(mg, weights, opts);
    await store.pruneMiners(this.#d.clock.now() - (settings.historyRetentionMs ?? WEEK_MS));
    return { scores, weights, rows: shown, metagraph: mg, ...step };
  }

  /**
   * Reveals a pending commit whose reveal epoch has come, without scoring
   * (the loop calls it after every probe round, so a long weights interval
   * cannot make a reveal miss its one-epoch window).
   */
  async revealDue(): Promise<void> {
    await this.#weightsStep?.revealDue();
  }

  /**
   * Reads the directory and the traffic shape, schedules the listed miners
   * and fails the known miners that no router lists. Undefined when no
   * router answers (nobody is punished then).
   */
  async #survey(schedule: ProbeSchedule): Promise<DirectoryListing | undefined> {
    const { router, store, clock, logger, settings } = this.#d;
    let listing: DirectoryListing;
    try {
      listing = await router.listMiners();
    } catch (err) {
      if (err instanceof RouterUnreachableError) {
        logger.warn({ attempts: err.attempts }, `miner listing skipped: ${SKIP_MESSAGE}`);
        return undefined;
      }
      throw err;
    }
    await this.#prober.refreshShape();
    schedule.sync(probeTargets(listing.sessions), clock.now());
    const gone = disconnectedMiners(listing, await this.#known(), settings.reconnectGraceMs);
    if (gone.length > 0) {
      await store.appendProbes(gone.map((hotkey) => failedEntry(hotkey, clock.now())));
      logger.info({ miners: gone }, "known miners that no router lists: failed probes recorded");
    }
    return listing;
  }

  /** Probes one miner now, stores the result and judges the audit cases it completed. */
  async #probeOne(hotkey: string, listing: DirectoryListing): Promise<void> {
    const { store, clock, logger } = this.#d;
    const outcome = await this.#prober.probe(hotkey, listing.sessions);
    if (outcome.kind === "probed") {
      await store.appendProbes([probedEntry(hotkey, outcome.response, clock.now())]);
    } else if (outcome.kind === "absent") {
      await store.appendProbes([failedEntry(hotkey, clock.now())]);
    } else {
      logger.warn({ hotkey, detail: outcome.detail }, "router failed a probe; not punishing the miner");
    }
    await this.settleAudits(listing.sessions);
  }

  /**
   * Runs until `signal` aborts. Each miner is probed at its own random
   * times (exponential gaps with the probe interval as their mean, see
   * ProbeSchedule). The directory is read once per probe interval, due
   * reveals are checked as often, and a scoring pass (with weights) runs
   * every weights interval. A failing step is logged and the loop goes on.
   *
   * The listing and the chain work run beside the probes, each one at a
   * time, and never hold them up: a probe whose time comes while the router
   * lists its miners or the chain includes weights (seconds, sometimes a
   * minute) goes at its time. Awaited in line, those steps paused probing
   * and then released every probe that fell due meanwhile at once, a burst
   * across miners that a miner running several hotkeys could see.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { settings, clock, logger } = this.#d;
    const schedule = new ProbeSchedule(settings.probeIntervalMs, this.#random);
    const inFlight = this.#inFlight;
    let listing: DirectoryListing | undefined;
    let nextSurvey = clock.now();
    let nextReveal = clock.now();
    let nextWeights = clock.now();
    let surveying: Promise<void> | undefined;
    let chainWork: Promise<void> | undefined;
    /** Ends the loop's current wait early (a background step finished). */
    let wake = () => {};
    while (!signal.aborted) {
      const now = clock.now();
      if (surveying === undefined && now >= nextSurvey) {
        surveying = this.#guard("miner listing", async () => {
          listing = (await this.#survey(schedule)) ?? listing;
        }).finally(() => {
          surveying = undefined;
          nextSurvey = clock.now() + settings.probeIntervalMs;
          wake();
        });
      }
      if (chainWork === undefined && (now >= nextWeights || now >= nextReveal)) {
        // One chain step at a time: a reveal never races the commit a scoring pass is making.
        const scoring = now >= nextWeights;
        chainWork = (
          scoring
            ? // A dry run exists to be watched: print the table every pass.
              this.#guard("scoring pass", () => this.scorePass({ submit: true, print: settings.dryRun }))
            : this.#guard("reveal check", () => this.revealDue())
        ).finally(() => {
          chainWork = undefined;
          if (scoring) nextWeights = clock.now() + settings.weightsIntervalMs;
          nextReveal = clock.now() + settings.probeIntervalMs;
          wake();
        });
      }
      const current = listing;
      for (const hotkey of current === undefined ? [] : schedule.takeDue(now)) {
        if (current === undefined) break;
        if (inFlight.size >= settings.probeConcurrency) {
          logger.warn({ hotkey, inFlight: inFlight.size }, "probe skipped: too many probes in flight");
          continue;
        }
        const p: Promise<void> = this.#guard("probe", () => this.#probeOne(hotkey, current)).finally(() =>
          inFlight.delete(p),
        );
        inFlight.add(p);
      }
      const wakeAt = Math.min(
        schedule.nextDueMs() ?? Number.POSITIVE_INFINITY,
        surveying === undefined ? nextSurvey : Number.POSITIVE_INFINITY,
        chainWork === undefined ? Math.min(nextWeights, nextReveal) : Number.POSITIVE_INFINITY,
      );
      const nap = new AbortController();
      wake = () => nap.abort();
      const stop = () => nap.abort();
      signal.addEventListener("abort", stop, { once: true });
      await (Number.isFinite(wakeAt)
        ? clock.sleep(Math.max(0, wakeAt - clock.now()), nap.signal)
        : new Promise<void>((resolve) =>
            nap.signal.addEventListener("abort", () => resolve(), { once: true }),
          ));
      signal.removeEventListener("abort", stop);
      wake = () => {};
    }
    await Promise.allSettled([...inFlight, surveying, chainWork]);
    logger.info("validator loop stopped");
  }

  /** Probes the loop started that have not finished yet. */
  get probesInFlight(): number {
    return this.#inFlight.size;
  }

  async #guard(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#d.logger.error({ err: err instanceof Error ? err.message : String(err) }, `${what} failed`);
    }
  }
}
