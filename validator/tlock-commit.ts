import type { Metagraph } from "../common/chain/chain.js";
import { type RandomBytes, tlockEncrypt } from "./tlock-cipher.js";
import { encodeTlockPayload } from "./tlock-payload.js";
import { type RevealRound, revealRound } from "./tlock-round.js";
import type { WeightVector } from "./weights.js";

/** Subtensor's mainnet block time, for runtimes whose constants do not say. */
export const DEFAULT_BLOCK_TIME_MS = 12_000;

/** The runtime's bound on a commit (`MAX_CRV3_COMMIT_SIZE_BYTES`). */
export const MAX_COMMIT_BYTES = 5_000;

/** A timelocked weight commit, ready to submit. */
export interface TlockCommit {
  /** Serialised `TLECiphertext`: the extrinsic's `commit` argument. */
  readonly ciphertext: Uint8Array;
  readonly reveal: RevealRound;
  /** Size of the SCALE payload inside. */
  readonly payloadBytes: number;
}

/**
 * Encrypts this validator's weights to the drand round at which the chain
 * should open them (see {@link revealRound}). Nobody, this validator
 * included, can read them before quicknet publishes that round.
 */
export function buildTlockCommit(
  mg: Metagraph,
  hotkey: string,
  w: WeightVector,
  nowMs: number,
  randomBytes: RandomBytes,
): TlockCommit {
  const payload = encodeTlockPayload({
    hotkey,
    uids: w.uids,
    values: w.values,
    versionKey: mg.weightsVersionKey,
  });
  const reveal = revealRound({
    netuid: mg.netuid,
    tempo: mg.tempo,
    revealPeriodEpochs: mg.revealPeriodEpochs,
    block: mg.block,
    blockTimeMs: mg.blockTimeMs ?? DEFAULT_BLOCK_TIME_MS,
    nowMs,
  });
  const ciphertext = tlockEncrypt(payload, reveal.round, randomBytes);
  if (ciphertext.length > MAX_COMMIT_BYTES) {
    throw new RangeError(
      `timelocked commit of ${ciphertext.length} bytes exceeds the chain's ${MAX_COMMIT_BYTES}`,
    );
  }
  return { ciphertext, reveal, payloadBytes: payload.length };
}
