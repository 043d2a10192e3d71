import { TensorClawError } from "../../common/errors.js";
import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";
import { carriesToken } from "../routing/first-token.js";
import type { InferenceCall } from "../tunnel/types.js";
import type { ClampedUsage } from "../usage/clamp.js";
import type { UsageOutcome } from "../usage/event.js";
import type { AttemptLoop, AttemptState } from "./attempt-loop.js";
import type { ChatSink } from "./chat-sinks.js";
import { refusedForCapacity } from "./request-frame.js";
import { type Attempt, upstreamError } from "./upstream.js";

/**
 * Relays one miner's answer into a streaming sink (chat, Responses,
 * completions) and says whether another miner may be tried: only while no
 * output reached the user. `onChunk` sees each chunk before the sink does.
 */
export async function relayToSink(
  st: Pick<AttemptState, "clientGone" | "reported">,
  call: InferenceCall,
  sink: ChatSink,
  loop: AttemptLoop,
  model: string,
  retryAfterMs: number,
  onChunk?: (chunk: ResponseChunk) => void,
): Promise<Attempt> {
  for await (const ev of call.events) {
    if (ev.type === "chunk") {
      // TTFT counts the first chunk carrying a real token, not an empty one.
      if (carriesToken(ev.chunk)) loop.firstToken(model);
      onChunk?.(ev.chunk);
      let taken = sink.chunk(ev.chunk);
      if (taken !== true && taken !== false) taken = await taken;
      if (!taken) call.cancel("client disconnected");
    } else if (ev.type === "usage") {
      st.reported = ev;
      return { kind: "done" };
    } else {
      if (st.clientGone) return { kind: "failed", error: new TensorClawError("cancelled") };
      const u = upstreamError(ev, retryAfterMs);
      // Output already reached the user: another miner must not start over (and this one earns nothing).
      return sink.chunks === 0 && u.retry
        ? { kind: "retry", error: u.error }
        : { kind: "failed", error: u.error };
    }
  }
  return { kind: sink.chunks === 0 ? "retry" : "failed", error: new TensorClawError("upstream_error") };
}

/** How a streamed request ended, as its usage hand-off and its rate-limit settlement read it. */
export interface SinkRequestState extends AttemptState {
  outcome: UsageOutcome | undefined;
  /** No miner could take the request (503 no_capacity): the key's request is given back. */
  refusedForCapacity: boolean;
}

/**
 * The one relay of a streamed request: runs `attempts` into `sink`, then
 * writes the end (the answer with its credited usage, an error, or nothing
 * for a client that left) and records how it ended. A completed answer ends
 * only after `beforeEnd` (the usage hand-off, awaited until durable).
 * Resolves to the status logged.
 */
export async function relayRequest(
  st: SinkRequestState,
  sink: ChatSink,
  attempts: () => Promise<Attempt>,
  credit: () => ClampedUsage,
  beforeEnd?: () => Promise<void>,
): Promise<number> {
  sink.begin();
  const result = await attempts();
  sink.settle();
  if (result.kind === "done") {
    st.outcome = "completed";
    if (beforeEnd !== undefined) await beforeEnd();
    return sink.complete(credit);
  }
  st.outcome = result.error.code === "cancelled" || sink.gone ? "cancelled" : "failed";
  // Refused for want of capacity (no miner took it on): the key's request is given back.
  st.refusedForCapacity = refusedForCapacity(result.error.code, st);
  if (sink.gone) return 499;
  return sink.fail(result.error);
}
