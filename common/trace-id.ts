import { randomBytes } from "node:crypto";

/**
 * A request's id: 16 random bytes as 32 lower-case hex characters. The
 * router's `x-request-id`, and the `trace_id` a miner sees (tunnel.proto):
 * drawn fresh for every user request and every probe alike, so an id says
 * nothing about the router, its traffic or which requests are probes.
 */
export function newTraceId(random: (n: number) => Buffer = randomBytes): string {
  return random(16).toString("hex");
}

/** What a well-formed trace id looks like. */
export const TRACE_ID = /^[0-9a-f]{32}$/;
