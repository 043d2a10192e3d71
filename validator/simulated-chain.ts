import type { Chain, ExtrinsicOutcome, Metagraph, Neuron } from "../common/chain/chain.js";

/** Which chain a dry run pretends to be on (`--simulate-chain`). */
export type SimulatedChainMode = "set-weights" | "commit-reveal";

/** `--simulate-chain` values; `off` means no simulated chain. */
export const SIMULATE_CHAIN_CHOICES = ["off", "set-weights", "commit-reveal"] as const;

/**
 * The simulated subnet's hyperparameters: Subtensor's usual values for a
 * subnet (tempo 360, reveal after one epoch), 12 s blocks, and the
 * commit-reveal version today's runtime requires of timelocked commits.
 */
export const SIMULATED_SUBNET = Object.freeze({
  tempo: 360,
  revealPeriodEpochs: 1,
  weightsSetRateLimit: 100,
  weightsVersionKey: 0n,
  minAllowedWeights: 1,
  commitRevealVersion: 4,
  blockTimeMs: 12_000,
  /** A subnet holds at most this many uids; later hotkeys get none (and no weight). */
  maxUids: 256,
  /**
   * When block 0 was, Unix ms: the simulated block number is the 12 s
   * blocks since then. Finney's launch month, so numbers look like mainnet's.
   */
  genesisMs: Date.UTC(2023, 2, 20),
});

/** What the simulated chain reads. */
export interface SimulatedChainOptions {
  readonly mode: SimulatedChainMode;
  /** The validator's hotkey: uid 0, the only validator permit. */
  readonly selfHotkey: string;
  /**
   * The hotkeys the validator scores now (the router's directory, its probe
   * history, the usage report); each is registered the first time it shows.
   */
  readonly hotkeys: () => Promise<Iterable<string>>;
  /** Wall clock, Unix ms: the block number follows it. */
  readonly nowMs: () => number;
  /** Overrides SIMULATED_SUBNET.genesisMs (tests pin the block). */
  readonly genesisMs?: number;
}

/**
 * An in-process stand-in for Subtensor, for dry runs without `--chain`: its
 * metagraph registers every hotkey the validator scores, so the weights
 * step plans exactly what it would on a real subnet with commit-reveal off
 * (`set_weights`) or on (a timelocked commit, really encrypted, whose size
 * and drand round the dry run prints). Uids are stable: a hotkey keeps the
 * uid it was registered with for the life of the process. It is read-only:
 * a dry run never writes, so a write is a bug and fails loudly.
 */
export class SimulatedChain implements Chain {
  readonly #o: SimulatedChainOptions;
  /** Registration order: index is the uid. */
  readonly #registered: string[];

  constructor(options: SimulatedChainOptions) {
    this.#o = options;
    this.#registered = [options.selfHotkey];
  }

  async readMetagraph(netuid: number): Promise<Metagraph> {
    const seen = new Set(this.#registered);
    // Sorted so that a batch of newcomers gets the same uids whatever order the router lists them in.
    const fresh = [...new Set(await this.#o.hotkeys())].filter((hk) => !seen.has(hk)).sort();
    for (const hk of fresh) {
      if (this.#registered.length >= SIMULATED_SUBNET.maxUids) break;
      this.#registered.push(hk);
    }
    const s = SIMULATED_SUBNET;
    const neurons: Neuron[] = this.#registered.map((hotkey, uid) => ({
      uid,
      hotkey,
      validatorPermit: uid === 0,
      // Nothing is ever written, so no update was ever made: the rate limit never holds a dry run.
      lastUpdate: 0,
    }));
    return {
      netuid,
      block: simulatedBlock(this.#o.nowMs(), this.#o.genesisMs ?? s.genesisMs),
      neurons,
      commitRevealEnabled: this.#o.mode === "commit-reveal",
      weightsSetRateLimit: s.weightsSetRateLimit,
      weightsVersionKey: s.weightsVersionKey,
      tempo: s.tempo,
      revealPeriodEpochs: s.revealPeriodEpochs,
      minAllowedWeights: s.minAllowedWeights,
      // Today's runtime has timelocked commits whether or not a subnet turns commit-reveal on.
      commitRevealVersion: s.commitRevealVersion,
      blockTimeMs: s.blockTimeMs,
    };
  }

  setWeights(): Promise<ExtrinsicOutcome> {
    return refuse("set_weights");
  }

  commitWeights(): Promise<ExtrinsicOutcome> {
    return refuse("commit_weights");
  }

  commitTimelockedWeights(): Promise<ExtrinsicOutcome> {
    return refuse("commit_timelocked_weights");
  }

  revealWeights(): Promise<ExtrinsicOutcome> {
    return refuse("reveal_weights");
  }

  async close(): Promise<void> {}
}

/** The simulated block at `nowMs`: whole 12 s blocks since genesis (0 before it). */
export function simulatedBlock(nowMs: number, genesisMs: number = SIMULATED_SUBNET.genesisMs): number {
  return Math.max(0, Math.floor((nowMs - genesisMs) / SIMULATED_SUBNET.blockTimeMs));
}

async function refuse(call: string): Promise<never> {
  throw new Error(
    `the simulated chain cannot ${call}: it only serves dry runs, which submit nothing (use --chain to write weights)`,
  );
}
