import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { TypeRegistry } from "@polkadot/types";
import { decodeAddress } from "@polkadot/util-crypto";
import { expect } from "chai";
import { tlockEncrypt } from "../../validator/tlock-cipher.js";
import { encodeTlockPayload } from "../../validator/tlock-payload.js";
import { QUICKNET, roundMessage } from "../../validator/tlock-quicknet.js";
import { type TleReference, tleReference } from "../support/tle-reference.js";
import { tlockDecrypt } from "../support/tlock-decrypt.js";

const fixture = <T>(name: string): T =>
  JSON.parse(readFileSync(new URL(`../fixtures/tlock/${name}`, import.meta.url), "utf8")) as T;
const pulse = fixture<{ signature: string }>("quicknet-round-1000.json");
const vector = fixture<{
  round: number;
  payload: { hotkey: string; uids: number[]; values: number[]; versionKey: string };
  payloadHex: string;
  ciphertextHex: string;
}>("tle-vector.json");
const SIG_1000 = Buffer.from(pulse.signature, "hex");
const QUICKNET_KEY = Buffer.from(QUICKNET.publicKeyHex, "hex");
const fresh = (n: number) => new Uint8Array(randomBytes(n));
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

// Subtensor's WeightsTlockPayload as @polkadot/types encodes it, independent of our encoder.
const registry = new TypeRegistry();
const decodePayload = (b: Uint8Array) =>
  registry.createType("(Vec<u8>, Vec<u16>, Vec<u16>, u64)", b).toJSON() as [
    string,
    number[],
    number[],
    number,
  ];

describe("timelock interoperability with the tle crate (Subtensor's decryption library)", () => {
  let tle: TleReference;

  before(async () => {
    tle = await tleReference();
  });

  it("tle opens our ciphertext with the real quicknet round-1000 signature and gets the exact payload", () => {
    const payload = encodeTlockPayload({
      hotkey: vector.payload.hotkey,
      uids: Array.from({ length: 256 }, (_, i) => i),
      values: Array.from({ length: 256 }, (_, i) => (i * 257) & 0xffff),
      versionKey: 2n ** 63n + 5n,
    });
    const ct = tlockEncrypt(payload, 1000n, fresh);
    expect(hex(tle.decrypt(ct, SIG_1000))).to.equal(hex(payload));
    // The plaintext is the struct the runtime decodes, hotkey first.
    const [hk, uids, values] = decodePayload(tle.decrypt(ct, SIG_1000));
    expect(hk).to.equal(`0x${hex(decodeAddress(vector.payload.hotkey))}`);
    expect(uids).to.have.length(256);
    expect(values[255]).to.equal((255 * 257) & 0xffff);
  });

  it("tle refuses our ciphertext for round 1001 with round 1000's signature", () => {
    const ct = tlockEncrypt(new Uint8Array([1, 2, 3]), 1001n, fresh);
    expect(() => tle.decrypt(ct, SIG_1000)).to.throw();
  });

  it("we open a ciphertext tle makes now, with the real signature", () => {
    const plain = new TextEncoder().encode("made by the tle crate");
    const ct = tle.encrypt(roundMessage(1000n), plain, fresh(32), QUICKNET_KEY);
    expect(Buffer.from(tlockDecrypt(ct, SIG_1000)).toString()).to.equal("made by the tle crate");
  });

  it("we open the committed tle vector to the payload it states, and encode that payload identically", () => {
    const plain = tlockDecrypt(Buffer.from(vector.ciphertextHex, "hex"), SIG_1000);
    expect(hex(plain)).to.equal(vector.payloadHex);
    const p = vector.payload;
    const ours = encodeTlockPayload({ ...p, versionKey: BigInt(p.versionKey) });
    expect(hex(ours)).to.equal(vector.payloadHex);
    const [hk, uids, values, versionKey] = decodePayload(plain);
    expect(hk).to.equal(`0x${hex(decodeAddress(p.hotkey))}`);
    expect(uids).to.deep.equal(p.uids);
    expect(values).to.deep.equal(p.values);
    expect(versionKey).to.equal(Number(p.versionKey));
  });
});
