import type { ResponseChunk } from "../gen/tensorclaw/v1/tunnel.js";

/**
 * Bytes of flow-control credit one ResponseChunk consumes (tunnel.proto,
 * "Flow control"): the UTF-8 length of `content_delta` and `reasoning_delta`
 * plus that of every ToolCallDelta string field. Both ends must count the
 * same way, so this is the one definition.
 */
export function chunkPayloadBytes(chunk: ResponseChunk): number {
  let n = utf8Length(chunk.contentDelta) + utf8Length(chunk.reasoningDelta);
  for (const t of chunk.toolCalls) {
    n += utf8Length(t.id) + utf8Length(t.type) + utf8Length(t.functionName) + utf8Length(t.argumentsDelta);
  }
  return n;
}

function utf8Length(s: string): number {
  return s.length === 0 ? 0 : Buffer.byteLength(s, "utf8");
}
