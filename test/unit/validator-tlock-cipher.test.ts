import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { bls12_381 } from "@noble/curves/bls12-381.js";
import { expect } from "chai";
import { CIPHER_SUITE, quicknetPublicKey, tlockEncrypt } from "../../validator/tlock-cipher.js";
import { identityPoint } from "../../validator/tlock-ibe.js";
import { QUICKNET, roundMessage } from "../../validator/tlock-quicknet.js";
import { parseTlock, tlockDecrypt } from "../support/tlock-decrypt.js";

const pulse = JSON.parse(
  readFileSync(new URL("../fixtures/tlock/quicknet-round-1000.json", import.meta.url), "utf8"),
) as { round: number; signature: string };
const SIG_1000 = Buffer.from(pulse.signature, "hex");
const fresh = (n: number) => new Uint8Array(randomBytes(n));

/** A random source replaying a fixed byte stream, so an encryption can be pinned. */
function replay(seed: number): (n: number) => Uint8Array {
  let x = seed;
  return (n) =>
    Uint8Array.from({ length: n }, () => {
      x = (Math.imul(x, 1_103_515_245) + 12_345) >>> 0;
      return x >>> 24;
    });
}

const u64le = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getBigUint64(at, true);

describe("timelock cipher (tle layout, drand quicknet)", () => {
  it("the round-1000 fixture is a genuine quicknet signature (BLS verify under quicknet's key)", () => {
    const msg = identityPoint(roundMessage(1000n), QUICKNET.hashToCurveDst);
    expect(bls12_381.shortSignatures.verify(SIG_1000, msg, quicknetPublicKey())).to.equal(true);
    const other = identityPoint(roundMessage(1001n), QUICKNET.hashToCurveDst);
    expect(bls12_381.shortSignatures.verify(SIG_1000, other, quicknetPublicKey())).to.equal(false);
  });

  it("locks to sha256 of the round as a big-endian u64, and refuses round 0", () => {
    const expected = createHash("sha256").update(Buffer.from("00000000000003e8", "hex")).digest("hex");
    expect(Buffer.from(roundMessage(1000n)).toString("hex")).to.equal(expected);
    expect(() => roundMessage(0n)).to.throw(RangeError);
    expect(() => roundMessage(2n ** 64n)).to.throw(RangeError);
  });

  it("lays the ciphertext out as tle's TLECiphertext: G2 U, 32-byte V and W, AES body, cipher suite", () => {
    const payload = new TextEncoder().encode("weights payload of 31 bytes....");
    const ct = tlockEncrypt(payload, 1000n, replay(1));
    expect(ct.length).to.equal(244 + payload.length);
    expect(u64le(ct, 96)).to.equal(32n);
    expect(u64le(ct, 136)).to.equal(32n);
    expect(u64le(ct, 176)).to.equal(BigInt(8 + payload.length + 16 + 8 + 12));
    expect(u64le(ct, 184)).to.equal(BigInt(payload.length + 16));
    expect(u64le(ct, 184 + 8 + payload.length + 16)).to.equal(12n);
    expect(u64le(ct, ct.length - 16)).to.equal(8n);
    expect(Buffer.from(ct.subarray(ct.length - 8)).toString()).to.equal("AES_GCM_");
    const parsed = parseTlock(ct);
    expect(parsed.cipherSuite).to.deep.equal(CIPHER_SUITE);
    expect(parsed.header.u.equals(bls12_381.G2.Point.ZERO)).to.equal(false);
    // Pinned randomness gives pinned bytes; fresh randomness never repeats a ciphertext.
    expect(Buffer.from(tlockEncrypt(payload, 1000n, replay(1))).equals(Buffer.from(ct))).to.equal(true);
    expect(Buffer.from(tlockEncrypt(payload, 1000n, fresh)).equals(Buffer.from(ct))).to.equal(false);
  });

  it("opens with the real round-1000 pulse to the exact payload, and not with another round's", () => {
    const payload = Uint8Array.from({ length: 1_100 }, (_, i) => (i * 7) & 0xff);
    const ct = tlockEncrypt(payload, 1000n, fresh);
    expect(Buffer.from(tlockDecrypt(ct, SIG_1000)).equals(Buffer.from(payload))).to.equal(true);
    const later = tlockEncrypt(payload, 1001n, fresh);
    expect(() => tlockDecrypt(later, SIG_1000)).to.throw(/does not open/);
  });

  it("rejects a tampered body (GCM tag) and a tampered header (IBE check)", () => {
    const payload = new TextEncoder().encode("do not touch");
    const ct = tlockEncrypt(payload, 1000n, fresh);
    const body = Uint8Array.from(ct);
    body[192] = (body[192] ?? 0) ^ 1;
    expect(() => tlockDecrypt(body, SIG_1000)).to.throw(/authenticate/);
    const header = Uint8Array.from(ct);
    header[104] = (header[104] ?? 0) ^ 1;
    expect(() => tlockDecrypt(header, SIG_1000)).to.throw(/does not open/);
  });

  it("refuses a random source that returns the wrong number of bytes", () => {
    expect(() => tlockEncrypt(new Uint8Array(4), 1000n, () => new Uint8Array(3))).to.throw(RangeError);
  });
});
