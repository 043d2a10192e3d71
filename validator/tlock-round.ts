import { epochIndex, firstBlockOfEpoch } from "../common/chain/chain.js";
import { QUICKNET } from "./tlock-quicknet.js";

/**
 * Blocks past the reveal epoch's first block at which the pulse should be on
 * chain, as the Python SDK (bittensor-drand `generate_commit`) aims: a
 * little margin so the chain has ingested the pulse when it reveals.
 */
export const REVEAL_SAFETY_BLOCKS = 3;

/** What the reveal round depends on. */
export interface RevealRoundInput {
  readonly netuid: number;
  /** `SubtensorModule.Tempo` (blocks per epoch minus one). */
  readonly tempo: number;
  /** `SubtensorModule.RevealPeriodEpochs`. */
  readonly revealPeriodEpochs: number;
  /** The block the commit is made at. */
  readonly block: number;
  /** Milliseconds per block. */
  readonly blockTimeMs: number;
  /** Wall clock now, Unix milliseconds. */
  readonly nowMs: number;
}

/** The reveal round and the block it was aimed at. */
export interface RevealRound {
  readonly round: bigint;
  /** First block of the epoch in which the chain reveals the commit. */
  readonly revealEpochFirstBlock: number;
  /** The block whose time the round was computed for. */
  readonly targetBlock: number;
}

/**
 * The drand round a commit made now must be locked to, computed the way the
 * Python SDK does (bittensor-drand `generate_commit`): the reveal epoch is
 * the commit's epoch plus the reveal period; aim at that epoch's first block
 * plus {@link REVEAL_SAFETY_BLOCKS}, turn the blocks until then into
 * wall-clock time, and take the last quicknet round emitted by that time
 * (rounded down, so the chain never waits for a pulse that is not out yet).
 * Pure: the clock comes in as `nowMs`.
 */
export function revealRound(i: RevealRoundInput): RevealRound {
  if (!(i.blockTimeMs > 0)) throw new RangeError(`block time ${i.blockTimeMs} ms must be positive`);
  const revealEpoch = epochIndex(i.block, i.netuid, i.tempo) + i.revealPeriodEpochs;
  const first = firstBlockOfEpoch(revealEpoch, i.netuid, i.tempo);
  const target = first + REVEAL_SAFETY_BLOCKS;
  const targetMs = i.nowMs + Math.max(0, target - i.block) * i.blockTimeMs;
  const sinceGenesisMs = targetMs - QUICKNET.genesisTimeSec * 1000;
  const round = Math.floor(sinceGenesisMs / (QUICKNET.periodSec * 1000));
  return { round: BigInt(Math.max(1, round)), revealEpochFirstBlock: first, targetBlock: target };
}
