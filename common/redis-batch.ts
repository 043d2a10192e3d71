import type { ChainableCommander, Cluster } from "ioredis";
import { TensorClawError } from "./errors.js";
import type { RedisClient } from "./redis-connect.js";
import { keySlot } from "./redis-slot.js";

/**
 * One command of a batch: `key` is one of its keys (every key of one
 * command shares a slot), `run` issues the command on the pipeline it is
 * given.
 */
export interface BatchCall {
  readonly key: string;
  readonly run: (p: ChainableCommander) => unknown;
}

/**
 * Writes count as done only once replicas have them too (Redis WAIT on the
 * connection that made them). Replication is asynchronous: without this, a
 * replica promoted after its master died lacks what the master acknowledged
 * last, and the caller, told it was written, does not write it again.
 */
export interface ReplicaWait {
  /** Replicas of each master written that must acknowledge (at least 1). */
  readonly replicas: number;
  /** Longest wait for them, ms; fewer acknowledgements by then fail the batch. */
  readonly timeoutMs: number;
}

/** The wait `--redis-wait-replicas` and `--redis-wait-timeout-ms` ask for; undefined for none (0). */
export function replicaWaitOf(cfg: {
  readonly redisWaitReplicas: number;
  readonly redisWaitTimeoutMs: number;
}): ReplicaWait | undefined {
  return cfg.redisWaitReplicas > 0
    ? { replicas: cfg.redisWaitReplicas, timeoutMs: cfg.redisWaitTimeoutMs }
    : undefined;
}

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

/** Commands bound for one master of a cluster, with their places in the batch's replies. */
interface NodeGroup {
  readonly calls: BatchCall[];
  readonly at: number[];
}

/**
 * Runs commands whose keys may lie in many slots, in the cheapest way the
 * client allows, and returns their replies in call order (phases
 * concatenated). Any failure throws `unavailable` once every command of the
 * phase has settled.
 *
 * - One server: one pipeline for everything (one round trip), in order. A
 *   single command skips the pipeline: its machinery costs more than the
 *   command.
 * - Cluster: one pipeline per master (ioredis refuses a pipeline whose keys
 *   span nodes), sent concurrently; order is kept within each master. A
 *   slot that moved since the client last learned the slot map fails the
 *   batch (callers retry: the recorder spools it), never half-routes it.
 *
 * Phases order commands across slots: on a cluster, every command of a
 * phase is acknowledged before the next phase is sent (on one server the
 * pipeline's order already gives that).
 *
 * With `wait`, each pipeline ends with a WAIT, and the batch fails
 * (`unavailable`, after its writes were applied on the masters) unless
 * every master written had them acknowledged by `wait.replicas` replicas
 * within `wait.timeoutMs`: callers write such a batch again, so what they
 * write must be idempotent (the ledger's and billing's scripts are).
 *
 * (Not ioredis' auto-pipelining: it routes a script by its first argument,
 * which for a script taking a variable number of keys is the key count, so
 * it would put commands for different masters in one pipeline.)
 */
export async function runBatch(
  client: RedisClient,
  phases: readonly (readonly BatchCall[])[],
  wait?: ReplicaWait,
): Promise<unknown[]> {
  const total = phases.reduce((n, p) => n + p.length, 0);
  if (total === 0) return [];
  if (!client.isCluster) {
    if (total === 1 && wait === undefined) {
      const only = phases.find((p) => p.length === 1)?.[0] as BatchCall;
      try {
        // The client takes the same command methods as a pipeline and returns the reply's promise.
        return [await only.run(client as unknown as ChainableCommander)];
      } catch (err) {
        throw unavailable(err);
      }
    }
    const pipe = client.pipeline();
    for (const phase of phases) for (const call of phase) call.run(pipe);
    return execWaiting(pipe, wait);
  }
  const slots = (client as Cluster).slots;
  const out: unknown[] = [];
  for (const phase of phases) {
    const groups = new Map<string, NodeGroup>();
    phase.forEach((call, i) => {
      const slot = keySlot(call.key);
      const node = slots[slot]?.[0] ?? `slot ${slot}`;
      const g = groups.get(node);
      if (g === undefined) groups.set(node, { calls: [call], at: [i] });
      else {
        g.calls.push(call);
        g.at.push(i);
      }
    });
    const replies: unknown[] = new Array(phase.length);
    const settled = await Promise.allSettled(
      [...groups.values()].map(async (g) => {
        const pipe = client.pipeline();
        for (const call of g.calls) call.run(pipe);
        const values = await execWaiting(pipe, wait);
        values.forEach((v, j) => {
          replies[g.at[j] as number] = v;
        });
      }),
    );
    for (const s of settled) if (s.status === "rejected") throw unavailable(s.reason);
    out.push(...replies);
  }
  return out;
}

/**
 * Runs a pipeline, ending it with WAIT when `wait` is given (a keyless
 * command: on a cluster it goes with the pipeline to its master), and
 * returns the replies without the WAIT's.
 */
async function execWaiting(pipe: ChainableCommander, wait: ReplicaWait | undefined): Promise<unknown[]> {
  if (wait === undefined) return pipelineResults(await pipe.exec());
  pipe.wait(wait.replicas, wait.timeoutMs);
  const values = pipelineResults(await pipe.exec());
  const acked = Number(values.pop());
  if (!(acked >= wait.replicas)) {
    throw new TensorClawError(
      "unavailable",
      `redis: ${acked} of ${wait.replicas} replicas acknowledged the writes within ${wait.timeoutMs} ms`,
    );
  }
  return values;
}
