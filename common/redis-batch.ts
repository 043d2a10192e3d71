import type { ChainableCommander } from "ioredis";
import { TensorClawError } from "./errors.js";
import type { RedisClient } from "./redis-connect.js";

/**
 * One command of a batch. It issues exactly one command on what it is
 * given and returns what that call returns: a pipeline on a single server
 * (the return value is then ignored), the client itself on a cluster (a
 * promise of the reply).
 */
export type BatchCall = (c: ChainableCommander) => unknown;

/** A pipeline's replies, or the first failure as an `unavailable` error. */
export function pipelineResults(results: [Error | null, unknown][] | null): unknown[] {
  if (results === null) throw new TensorClawError("unavailable", "redis pipeline was discarded");
  return results.map(([err, value]) => {
    if (err !== null) throw new TensorClawError("unavailable", `redis: ${err.message}`, { cause: err });
    return value;
  });
}

function unavailable(err: unknown): TensorClawError {
  if (err instanceof TensorClawError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TensorClawError("unavailable", `redis: ${message}`, { cause: err });
}

/**
 * Runs commands whose keys may lie in many slots, in the cheapest way the
 * client allows, and returns their replies in call order (phases
 * concatenated). Any failure throws `unavailable` once every command of the
 * phase has settled.
 *
 * - One server: one pipeline for everything (one round trip), in order.
 * - Cluster: ioredis refuses a pipeline whose keys span nodes, so each
 *   command goes on its own and auto-pipelining (common/redis-connect.ts)
 *   groups those bound for the same node into one write, in order.
 *
 * Phases order commands across slots: on a cluster, every command of a
 * phase is acknowledged before the next phase is sent (on one server the
 * pipeline's order already gives that). A single command skips the
 * pipeline machinery, which costs more than the command.
 */
export async function runBatch(
  client: RedisClient,
  phases: readonly (readonly BatchCall[])[],
): Promise<unknown[]> {
  // Both the pipeline and the client take the same command methods; a call
  // given the client returns the command's promise.
  const direct = client as unknown as ChainableCommander;
  const total = phases.reduce((n, p) => n + p.length, 0);
  if (total === 0) return [];
  if (!client.isCluster) {
    if (total === 1) {
      const only = phases.find((p) => p.length === 1)?.[0] as BatchCall;
      try {
        return [await only(direct)];
      } catch (err) {
        throw unavailable(err);
      }
    }
    const pipe = client.pipeline();
    for (const phase of phases) for (const call of phase) call(pipe);
    return pipelineResults(await pipe.exec());
  }
  const out: unknown[] = [];
  for (const phase of phases) {
    const settled = await Promise.allSettled(phase.map((call) => call(direct)));
    for (const s of settled) {
      if (s.status === "rejected") throw unavailable(s.reason);
      out.push(s.value);
    }
  }
  return out;
}
