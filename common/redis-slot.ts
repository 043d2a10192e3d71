/**
 * The Redis Cluster hash slot of a key: CRC16 (XMODEM: polynomial 0x1021,
 * initial value 0) of the key, or of its hash tag — the text between the
 * first `{` and the next `}` when that is not empty — modulo 16384.
 */

const TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 8;
    for (let b = 0; b < 8; b++) c = c & 0x8000 ? ((c << 1) ^ 0x1021) & 0xffff : (c << 1) & 0xffff;
    t[i] = c;
  }
  return t;
})();

function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc;
}

/** Number of hash slots of a Redis Cluster. */
export const CLUSTER_SLOTS = 16384;

/** The hash slot `key` lives in (its UTF-8 bytes, as Redis hashes them). */
export function keySlot(key: string): number {
  const open = key.indexOf("{");
  if (open !== -1) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) key = key.slice(open + 1, close);
  }
  return crc16(Buffer.from(key, "utf8")) % CLUSTER_SLOTS;
}
