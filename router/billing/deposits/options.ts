/** How often and how fast the deposit watcher works. */
export interface DepositTimings {
  /** Pause between passes once caught up (Subtensor makes a block every 12 s). */
  readonly pollMs: number;
  /** Most blocks one pass processes (a long catch-up yields between passes). */
  readonly maxBlocksPerPass: number;
  /** How old the key → address map may get before the key list is read again. */
  readonly keysRefreshMs: number;
  /** First pause after a failed pass; it doubles per failure up to `retryMaxMs`. */
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
}

/** Defaults of the deposit watcher, in one place. */
export const DEPOSIT_DEFAULTS = {
  /**
   * Blocks on top of a FINALIZED block before its deposits count. GRANDPA
   * finality is already irreversible; the extra blocks are a margin against
   * a node that reports finality wrongly, and cost about 36 s at 12 s a block.
   */
  confirmations: 3,
  timings: {
    pollMs: 6000,
    maxBlocksPerPass: 100,
    keysRefreshMs: 5000,
    retryMinMs: 1000,
    retryMaxMs: 60_000,
  } satisfies DepositTimings,
} as const;

/** The environment variable holding the treasury mnemonic (never a flag, never logged). */
export const TREASURY_MNEMONIC_ENV = "TENSORCLAW_TREASURY_MNEMONIC";
