/**
 * How long the validator waits for a probe's answer: the router's own probe
 * deadline (8 s, probe.proto; the router ignores what a validator asks). On
 * its own so that the validator's config can default to it without loading
 * the router client's gRPC code.
 */
export const PROBE_TIMEOUT_MS = 8000;
