/** One registered neuron of the subnet, as the validator needs it. */
export interface Neuron {
  readonly uid: number;
  /** SS58 hotkey (`SubtensorModule.Keys`). */
  readonly hotkey: string;
  /** `SubtensorModule.ValidatorPermit[uid]`. */
  readonly validatorPermit: boolean;
  /** Block of its last weights update (`SubtensorModule.LastUpdate[uid]`), 0 if never. */
  readonly lastUpdate: number;
}

/** The subnet state that drives scoring and weight setting, read at one block. */
export interface Metagraph {
  readonly netuid: number;
  /** Block number the state was read at. */
  readonly block: number;
  /** Registered neurons, ordered by uid. */
  readonly neurons: readonly Neuron[];
  readonly commitRevealEnabled: boolean;
  /** Minimum blocks between two weight updates of one validator. */
  readonly weightsSetRateLimit: number;
  readonly weightsVersionKey: bigint;
  /** Blocks per epoch minus one (`SubtensorModule.Tempo`). */
  readonly tempo: number;
  /** Epochs between a commit and its reveal (`SubtensorModule.RevealPeriodEpochs`). */
  readonly revealPeriodEpochs: number;
  /** Fewest uids one update may carry (`SubtensorModule.MinAllowedWeights`; capped by the subnet size). */
  readonly minAllowedWeights: number;
  /**
   * The commit-reveal version the runtime requires of timelocked commits
   * (`SubtensorModule.CommitRevealWeightsVersion`), present only when the
   * runtime has `commit_timelocked_weights`; absent on runtimes that know
   * only the hash scheme (`commit_weights` / `reveal_weights`).
   */
  readonly commitRevealVersion?: number;
  /** Milliseconds per block (Aura's slot duration), when the runtime says. */
  readonly blockTimeMs?: number;
}

/** How a submitted extrinsic ended. */
export type ExtrinsicOutcome =
  | {
      readonly ok: true;
      readonly blockHash: string;
      /** Number of the block it was included in. */
      readonly blockNumber: number;
      readonly txHash: string;
    }
  | {
      readonly ok: false;
      /** `Pallet.ErrorName` for a module error, else the dispatch error or RPC failure text. */
      readonly error: string;
      /** The outcome is unknown (no inclusion seen in time): it may still land. */
      readonly uncertain?: boolean;
      readonly blockHash?: string;
      readonly txHash?: string;
    };

/**
 * The validator's view of Subtensor: read the metagraph, write weights.
 * Writes are signed by the validator hotkey, wait for inclusion in a block
 * and resolve to the outcome (they reject only when the chain cannot be
 * reached at all).
 */
export interface Chain {
  readMetagraph(netuid: number): Promise<Metagraph>;
  setWeights(
    netuid: number,
    uids: readonly number[],
    values: readonly number[],
    versionKey: bigint,
  ): Promise<ExtrinsicOutcome>;
  /** `commitHash` is 0x-prefixed hex of 32 bytes. */
  commitWeights(netuid: number, commitHash: string): Promise<ExtrinsicOutcome>;
  /**
   * `commit_timelocked_weights`: a timelock ciphertext of the weights that
   * the chain itself opens with drand round `revealRound`'s pulse;
   * `commitRevealVersion` must equal the runtime's.
   */
  commitTimelockedWeights(
    netuid: number,
    commit: Uint8Array,
    revealRound: bigint,
    commitRevealVersion: number,
  ): Promise<ExtrinsicOutcome>;
  revealWeights(
    netuid: number,
    uids: readonly number[],
    values: readonly number[],
    salt: readonly number[],
    versionKey: bigint,
  ): Promise<ExtrinsicOutcome>;
  close(): Promise<void>;
}

/**
 * Subtensor's epoch index of a block: (block + netuid + 1) / (tempo + 1),
 * rounded down (the offset staggers subnets' epochs).
 */
export function epochIndex(block: number, netuid: number, tempo: number): number {
  return Math.floor((block + netuid + 1) / (tempo + 1));
}

/** First block of an epoch (inverse of {@link epochIndex}). */
export function firstBlockOfEpoch(epoch: number, netuid: number, tempo: number): number {
  return Math.max(0, epoch * (tempo + 1) - netuid - 1);
}
