import type { ResponseChunk } from "../../gen/tensorclaw/v1/tunnel.js";

/**
 * Whether a chunk carries part of the answer: assistant text, reasoning text,
 * a tool-call fragment that is not empty, or an embedding vector (which the
 * tunnel checked on arrival: router/tunnel/kind-check.ts). The time to the first such chunk
 * is a miner's time to first token.
 *
 * An empty chunk (a bare role or keep-alive chunk) costs a miner nothing to
 * send at once, so it must not count: otherwise an instant empty chunk would
 * buy a near-zero latency estimate and with it most of the traffic.
 */
export function carriesToken(chunk: ResponseChunk): boolean {
  if (chunk.contentDelta !== "" || chunk.reasoningDelta !== "" || chunk.embeddings.length > 0) return true;
  for (const t of chunk.toolCalls) {
    if (t.functionName !== "" || t.argumentsDelta !== "") return true;
  }
  return false;
}
