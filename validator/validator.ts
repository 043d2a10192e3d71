import type { Chain, ExtrinsicOutcome, Metagraph } from "../common/chain/chain.js";
import type { Clock } from "../common/clock.js";
import type { Logger } from "../common/logger.js";
import type { ListMinersResponse } from "../gen/tensorclaw/v1/directory.js";
import type { GetUsageResponse } from "../gen/tensorclaw/v1/usage.js";
import type { LatencyTier } from "./latency-tiers.js";
import { type ProbeRoundResult, type ProbeRouter, runProbeRound } from "./probe-round.js";
import { RouterUnreachableError } from "./router-client.js";
import { buildMinerInputs } from "./score-inputs.js";
import { formatScoreTable, type ScoreRow, scoreRows } from "./score-table.js";
import { type MinerScore, scoreMiners } from "./scoring.js";
import type { ValidatorStateStore } from "./state-store.js";
import { computeWeights, padToMinimum, type WeightVector } from "./weights.js";
import type { WeightsAction } from "./weights-plan.js";
import { WeightsStep } from "./weights-step.js";

/** The router calls a validator makes. */
export interface ValidatorRouter extends ProbeRouter {
  getUsage(windowSeconds?: number): Promise<GetUsageResponse>;
}

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

/** The validator: probe rounds, scoring passes and weight updates. */
export class Validator {
  readonly #d: ValidatorDeps;
  readonly #weightsStep: WeightsStep | undefined;

  constructor(deps: ValidatorDeps) {
    this.#d = deps;
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
            logger: deps.logger,
            print: deps.print,
          });
  }

  /**
   * One probe round, stored. Undefined when the round was skipped (router
   * unreachable, or it failed every probe itself): nobody is recorded then,
   * not even miners that no router lists.
   */
  async probeRound(): Promise<ProbeRoundResult | undefined> {
    const { router, store, settings, clock, logger } = this.#d;
    let round: ProbeRoundResult;
    // Miners with a pass in their kept history: if no router lists them now,
    // the round records a failure. Once every kept probe failed there is
    // nothing left to lose, so they stop getting entries and age out.
    const known = [...(await store.probeHistory())].filter(([, h]) => h.some((r) => r.ok)).map(([hk]) => hk);
    try {
      round = await runProbeRound(router, {
        concurrency: settings.probeConcurrency,
        timeoutMs: settings.probeTimeoutMs,
        clock: () => clock.now(),
        logger,
        known,
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
    return round;
  }

  /**
   * Scores every known miner from the stored probe history and the router's
   * 24 h usage; with a chain, maps hotkeys to uids and (unless `submit` is
   * false or this is a dry run) sets, commits or reveals weights. Undefined
   * when the router cannot be reached: the pass is skipped, nobody is punished.
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
    const scores = scoreMiners(
      buildMinerInputs(listing.sessions, history, usage.miners),
      settings.latencyTiers,
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
   * Runs until `signal` aborts: a probe round every probe interval and a
   * scoring pass (with weights) every weights interval. A failing pass is
   * logged and the loop goes on.
   */
  async run(signal: AbortSignal): Promise<void> {
    const { settings, clock, logger } = this.#d;
    let nextProbe = clock.now();
    let nextWeights = clock.now();
    while (!signal.aborted) {
      if (clock.now() >= nextProbe) {
        await this.#guard("probe round", () => this.probeRound());
        await this.#guard("reveal check", () => this.revealDue());
        nextProbe = Math.max(nextProbe + settings.probeIntervalMs, clock.now());
      }
      if (signal.aborted) break;
      if (clock.now() >= nextWeights) {
        // A dry run exists to be watched: print the table every pass.
        await this.#guard("scoring pass", () => this.scorePass({ submit: true, print: settings.dryRun }));
        nextWeights = clock.now() + settings.weightsIntervalMs;
      }
      const wait = Math.max(0, Math.min(nextProbe, nextWeights) - clock.now());
      await clock.sleep(wait, signal);
    }
    logger.info("validator loop stopped");
  }

  async #guard(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.#d.logger.error({ err: err instanceof Error ? err.message : String(err) }, `${what} failed`);
    }
  }
}
