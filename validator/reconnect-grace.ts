/**
 * How long after a router started its miner listing is taken as incomplete
 * (miners still reconnecting): twice the reference miner's longest reconnect
 * backoff (30 s). On its own so that the validator's config can default to it
 * without loading the probe round's generated gRPC code.
 */
export const RECONNECT_GRACE_MS = 60_000;
