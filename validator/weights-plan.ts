import { epochIndex, firstBlockOfEpoch, type Metagraph } from "../common/chain/chain.js";
import type { WeightVector } from "./weights.js";

/** A weight commit that still has to be revealed; stored durably (salt included). */
export interface PendingCommit {
  readonly netuid: number;
  /** The committing hotkey (SS58). */
  readonly hotkey: string;
  readonly uids: readonly number[];
  readonly values: readonly number[];
  readonly salt: readonly number[];
  /** Decimal string: JSON and Redis cannot hold a bigint. */
  readonly versionKey: string;
  /** 0x-prefixed blake2-256 hash that was committed. */
  readonly hash: string;
  /** Block the commit was included in (or read at, if inclusion block is unknown). */
  readonly commitBlock: number;
}

/** What to do with weights at this block. */
export type WeightsAction =
  | { readonly kind: "set"; readonly uid: number }
  | { readonly kind: "commit"; readonly uid: number }
  /** `commit_timelocked_weights` with the commit-reveal version the runtime requires. */
  | { readonly kind: "timelock"; readonly uid: number; readonly version: number }
  | { readonly kind: "reveal"; readonly uid: number; readonly commit: PendingCommit }
  | { readonly kind: "wait"; readonly reason: string };

/** The decision and the pending commits that can no longer be revealed. */
export interface WeightsPlan {
  readonly action: WeightsAction;
  /** Commits past their reveal epoch: drop them from storage. */
  readonly expired: readonly PendingCommit[];
}

/**
 * Which way weights go on chain in this state, and why (for the log): the
 * same decision {@link planWeights} makes, in words.
 */
export function weightsPath(mg: Metagraph): string {
  if (!mg.commitRevealEnabled) return `set_weights: commit-reveal is off on subnet ${mg.netuid}`;
  if (mg.commitRevealVersion !== undefined) {
    return (
      `commit_timelocked_weights: commit-reveal is on on subnet ${mg.netuid} and the runtime ` +
      `opens timelocked commits itself (commit_reveal_version ${mg.commitRevealVersion})`
    );
  }
  return (
    `commit_weights/reveal_weights: commit-reveal is on on subnet ${mg.netuid} and the runtime ` +
    "has no commit_timelocked_weights (hash scheme)"
  );
}

/** The epoch in which a commit must be revealed. */
export function revealEpoch(c: PendingCommit, mg: Metagraph): number {
  return epochIndex(c.commitBlock, mg.netuid, mg.tempo) + mg.revealPeriodEpochs;
}

/**
 * Decides, from chain state alone, whether to set weights directly, commit
 * them, reveal an earlier commit, or wait. Pure: the metagraph carries the
 * current block.
 *
 * - not registered, or no validator permit → wait (the chain would refuse);
 * - a pending commit whose reveal epoch is now → reveal it first;
 * - a pending commit past its reveal epoch → expired (dropped);
 * - nothing positive to set → wait (never an all-zero vector);
 * - inside the rate limit (LastUpdate + WeightsSetRateLimit) → wait;
 * - commit-reveal off → set;
 * - on, and the runtime has timelocked commits → one timelocked commit per
 *   epoch (the chain reveals it itself, so nothing stays pending here);
 * - on, hash scheme only → commit, unless a commit is already waiting for
 *   its reveal epoch.
 */
export function planWeights(
  mg: Metagraph,
  selfHotkey: string,
  pending: readonly PendingCommit[],
  weights: WeightVector,
): WeightsPlan {
  const me = mg.neurons.find((n) => n.hotkey === selfHotkey);
  const mine = pending.filter((c) => c.netuid === mg.netuid && c.hotkey === selfHotkey);
  const now = epochIndex(mg.block, mg.netuid, mg.tempo);
  const expired = mine.filter((c) => now > revealEpoch(c, mg));
  const live = mine.filter((c) => now <= revealEpoch(c, mg));
  const wait = (reason: string): WeightsPlan => ({ action: { kind: "wait", reason }, expired });

  if (me === undefined) return wait(`hotkey ${selfHotkey} is not registered on subnet ${mg.netuid}`);
  if (!me.validatorPermit) return wait(`uid ${me.uid} has no validator permit on subnet ${mg.netuid}`);

  if (mg.commitRevealEnabled) {
    const due = live
      .filter((c) => revealEpoch(c, mg) === now)
      .sort((a, b) => a.commitBlock - b.commitBlock)[0];
    if (due !== undefined) return { action: { kind: "reveal", uid: me.uid, commit: due }, expired };
  }
  if (weights.uids.length === 0) return wait("no miner has a positive score: setting nothing");

  const nextAllowed = me.lastUpdate + mg.weightsSetRateLimit;
  if (me.lastUpdate !== 0 && mg.block < nextAllowed) {
    return wait(`weights rate limit: last update at block ${me.lastUpdate}, next allowed at ${nextAllowed}`);
  }
  if (!mg.commitRevealEnabled) return { action: { kind: "set", uid: me.uid }, expired };

  if (mg.commitRevealVersion !== undefined) {
    // The chain moves LastUpdate when it takes a commit: an update already made in this
    // epoch is this epoch's commit, and a second one would only be revealed over it.
    if (me.lastUpdate !== 0 && epochIndex(me.lastUpdate, mg.netuid, mg.tempo) === now) {
      return wait(
        `timelocked commit already made in epoch ${now} (block ${me.lastUpdate}); ` +
          `next from block ${firstBlockOfEpoch(now + 1, mg.netuid, mg.tempo)}`,
      );
    }
    return { action: { kind: "timelock", uid: me.uid, version: mg.commitRevealVersion }, expired };
  }

  const waiting = live.sort((a, b) => a.commitBlock - b.commitBlock)[0];
  if (waiting !== undefined) {
    const epoch = revealEpoch(waiting, mg);
    return wait(
      `commit ${waiting.hash.slice(0, 10)}… waits for its reveal epoch ${epoch} ` +
        `(from block ${firstBlockOfEpoch(epoch, mg.netuid, mg.tempo)})`,
    );
  }
  return { action: { kind: "commit", uid: me.uid }, expired };
}
