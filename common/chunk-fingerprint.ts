/**
 * `system_fingerprint` as the tunnel carries it (tunnel.proto,
 * ResponseChunk.system_fingerprint): the backend's identifier of its
 * configuration, at most {@link MAX_FINGERPRINT_BYTES} bytes. The miner omits
 * a longer one and the router drops one that arrives anyway: it is a
 * backend's label, shown to users verbatim, so its size is bounded like any
 * other string a miner sends.
 */

/** Most UTF-8 bytes of a relayed `system_fingerprint`. */
export const MAX_FINGERPRINT_BYTES = 128;

/** `value` when it is a non-empty fingerprint within the limit, else "". */
export function boundedFingerprint(value: unknown): string {
  if (typeof value !== "string" || value === "") return "";
  // A UTF-8 character takes at most 4 bytes: the byte count is only needed near the limit.
  if (value.length * 4 <= MAX_FINGERPRINT_BYTES) return value;
  return Buffer.byteLength(value, "utf8") <= MAX_FINGERPRINT_BYTES ? value : "";
}
