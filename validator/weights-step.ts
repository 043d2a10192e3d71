import type { Chain, ExtrinsicOutcome, Metagraph } from "../common/chain/chain.js";
import type { Logger } from "../common/logger.js";
import { commitHash, newSalt } from "./commit-hash.js";
import type { ValidatorStateStore } from "./state-store.js";
import { buildTlockCommit, type TlockCommit } from "./tlock-commit.js";
import type { WeightVector } from "./weights.js";
import { type PendingCommit, planWeights, type WeightsAction, weightsPath } from "./weights-plan.js";

/** Chain errors after which a stored commit can never be revealed. */
const HOPELESS_REVEAL_ERRORS = new Set([
  "SubtensorModule.NoWeightsCommitFound",
  "SubtensorModule.InvalidRevealCommitHashNotMatch",
  "SubtensorModule.ExpiredWeightCommit",
  "SubtensorModule.CommitRevealDisabled",
]);

/** What the weights step needs. */
export interface WeightsStepDeps {
  readonly chain: Chain;
  readonly store: ValidatorStateStore;
  readonly selfHotkey: string;
  readonly netuid: number;
  readonly dryRun: boolean;
  readonly randomBytes: (n: number) => Uint8Array;
  /** Wall clock, Unix ms: a timelocked commit's drand round depends on it. */
  readonly nowMs: () => number;
  readonly logger: Logger;
  readonly print: (text: string) => void;
}

/** What one weights step decided and submitted. */
export interface WeightsStepResult {
  readonly actions: readonly WeightsAction[];
  readonly outcomes: readonly ExtrinsicOutcome[];
}

const NO_WEIGHTS: WeightVector = { uids: [], values: [] };

/**
 * Turns a weight vector into chain writes, as the chain state says (see
 * planWeights): set_weights; commit_timelocked_weights, which the chain
 * opens itself at the drand round; or, on runtimes with only the hash
 * scheme, commit_weights then (an epoch later) reveal_weights. Pending hash
 * commits live in the state store before they are submitted, so a crash or
 * restart never orphans one.
 */
export class WeightsStep {
  readonly #d: WeightsStepDeps;

  constructor(deps: WeightsStepDeps) {
    this.#d = deps;
  }

  /**
   * Plans and (unless a dry run or `submit` is false) executes: at most a
   * due reveal and then the next update, chain permitting.
   */
  async run(
    first: Metagraph,
    weights: WeightVector,
    opts: { submit: boolean; print: boolean },
  ): Promise<WeightsStepResult> {
    const { chain, store, selfHotkey, logger, netuid } = this.#d;
    const submit = opts.submit && !this.#d.dryRun;
    const actions: WeightsAction[] = [];
    const outcomes: ExtrinsicOutcome[] = [];
    let mg = first;
    logger.info({ netuid, path: weightsPath(mg) }, "weights path");
    for (let step = 0; step < 2; step++) {
      const plan = planWeights(mg, selfHotkey, await store.pendingCommits(), weights);
      if (plan.expired.length > 0) {
        logger.warn({ hashes: plan.expired.map((c) => c.hash) }, "dropping commits past their reveal epoch");
        if (submit) await store.removePendingCommits(plan.expired.map((c) => c.hash));
      }
      const a = plan.action;
      actions.push(a);
      // Encrypted before printing, so a dry run shows the real ciphertext size and round.
      const tlock =
        a.kind === "timelock"
          ? buildTlockCommit(mg, selfHotkey, weights, this.#d.nowMs(), this.#d.randomBytes)
          : undefined;
      if (opts.print) this.#d.print(`${describeAction(a, weights, mg, submit, tlock)}\n`);
      // The ciphertext is public once submitted anyway; a dry run shows it so it can be checked
      // (opened with the round's pulse once drand publishes it).
      if (opts.print && !submit && tlock !== undefined) {
        this.#d.print(`  ciphertext 0x${Buffer.from(tlock.ciphertext).toString("hex")}\n`);
      }
      if (!submit || a.kind === "wait") break;
      const outcome = await this.#execute(mg, a, weights, tlock);
      outcomes.push(outcome);
      if (opts.print) {
        this.#d.print(
          outcome.ok ? `  included in block ${outcome.blockHash}\n` : `  failed: ${outcome.error}\n`,
        );
      }
      if (!outcome.ok || a.kind !== "reveal") break;
      mg = await chain.readMetagraph(netuid);
    }
    return { actions, outcomes };
  }

  /** Reveals a commit whose reveal epoch is now; does nothing in dry runs or when nothing is pending. */
  async revealDue(): Promise<void> {
    const { chain, store, netuid } = this.#d;
    if (this.#d.dryRun || (await store.pendingCommits()).length === 0) return;
    const mg = await chain.readMetagraph(netuid);
    const plan = planWeights(mg, this.#d.selfHotkey, await store.pendingCommits(), NO_WEIGHTS);
    if (plan.expired.length > 0) await store.removePendingCommits(plan.expired.map((c) => c.hash));
    if (plan.action.kind === "reveal") await this.#execute(mg, plan.action, NO_WEIGHTS);
  }

  async #execute(
    mg: Metagraph,
    a: WeightsAction,
    w: WeightVector,
    tlock?: TlockCommit,
  ): Promise<ExtrinsicOutcome> {
    const { chain, store, selfHotkey, logger } = this.#d;
    const netuid = mg.netuid;
    switch (a.kind) {
      case "set":
        return chain.setWeights(netuid, w.uids, w.values, mg.weightsVersionKey);
      case "commit": {
        const salt = newSalt(this.#d.randomBytes);
        const base = { hotkey: selfHotkey, netuid, uids: w.uids, values: w.values, salt };
        const hash = commitHash({ versionKey: mg.weightsVersionKey, ...base });
        const pending: PendingCommit = {
          versionKey: mg.weightsVersionKey.toString(),
          hash,
          commitBlock: mg.block,
          ...base,
        };
        // Stored before submitting: if we crash after the commit lands, a restart still reveals it.
        await store.addPendingCommit(pending);
        const outcome = await chain.commitWeights(netuid, hash);
        // An uncertain commit may still land: keep it, so it is revealed if it did
        // (a reveal of a commit that never landed fails once and is dropped).
        if (!outcome.ok && outcome.uncertain !== true) {
          await store.removePendingCommits([hash]);
        } else if (outcome.ok && outcome.blockNumber >= 0) {
          await store.addPendingCommit({ ...pending, commitBlock: outcome.blockNumber });
        }
        return outcome;
      }
      case "timelock": {
        if (tlock === undefined) throw new Error("timelocked commit was not built");
        const outcome = await chain.commitTimelockedWeights(
          netuid,
          tlock.ciphertext,
          tlock.reveal.round,
          a.version,
        );
        const log = { revealRound: tlock.reveal.round.toString(), bytes: tlock.ciphertext.length };
        if (outcome.ok) logger.info(log, "timelocked weights committed");
        else logger.error({ error: outcome.error, ...log }, "timelocked commit failed");
        return outcome;
      }
      case "reveal": {
        const c = a.commit;
        const outcome = await chain.revealWeights(netuid, c.uids, c.values, c.salt, BigInt(c.versionKey));
        if (outcome.ok || HOPELESS_REVEAL_ERRORS.has(outcome.error)) {
          await store.removePendingCommits([c.hash]);
        }
        if (!outcome.ok) logger.error({ hash: c.hash, error: outcome.error }, "reveal failed");
        return outcome;
      }
      case "wait":
        throw new Error("nothing to execute while waiting");
    }
  }
}

/** One line saying what the weights step does (or would do, in a dry run). */
export function describeAction(
  a: WeightsAction,
  w: WeightVector,
  mg: Metagraph,
  submit: boolean,
  tlock?: TlockCommit,
): string {
  const verb = submit ? "" : "dry run, would ";
  const vec = `uids [${w.uids.join(",")}] values [${w.values.join(",")}]`;
  switch (a.kind) {
    case "wait":
      return `weights: ${a.reason}`;
    case "set":
      return `weights: ${verb}set_weights(netuid ${mg.netuid}, ${vec}, version_key ${mg.weightsVersionKey}) as uid ${a.uid}`;
    case "commit":
      return `weights: ${verb}commit_weights(netuid ${mg.netuid}, hash of ${vec}) as uid ${a.uid}; reveal ${mg.revealPeriodEpochs} epoch(s) later`;
    case "timelock":
      return (
        `weights: ${verb}commit_timelocked_weights(netuid ${mg.netuid}, ${tlock?.ciphertext.length ?? "?"}-byte ` +
        `ciphertext of ${vec}, reveal_round ${tlock?.reveal.round ?? "?"}, commit_reveal_version ${a.version}) ` +
        `as uid ${a.uid}; the chain opens it in the epoch from block ${tlock?.reveal.revealEpochFirstBlock ?? "?"}`
      );
    case "reveal":
      return `weights: ${verb}reveal_weights(netuid ${mg.netuid}, commit ${a.commit.hash}) as uid ${a.uid}`;
  }
}
