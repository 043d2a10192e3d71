import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { ReplayCache } from "../../common/replay-cache.js";
import {
  checkHello,
  checkValidatorCall,
  signHello,
  signValidatorCall,
  VALIDATOR_METADATA,
} from "../../common/signing.js";
import { throwawayHotkey } from "../support/keys.js";

const NOW = 1_764_000_000_000;

describe("signing", () => {
  let miner: Hotkey;
  let other: Hotkey;
  before(async () => {
    miner = await throwawayHotkey();
    other = await throwawayHotkey();
  });

  describe("tunnel hello", () => {
    const nonce = new Uint8Array(32).fill(5);
    const check = () => ({ nowMs: NOW, freshnessMs: 30_000, replay: new ReplayCache(60_000) });
    const fields = (hotkey: string, ts = NOW) => ({ nonce, routerId: "r1", timestampMs: ts, hotkey });

    it("accepts a fresh hello signed by the hotkey it names", () => {
      const sig = signHello(miner, nonce, "r1", NOW);
      expect(checkHello(fields(miner.address), sig, check())).to.equal(null);
    });

    it("refuses a hello signed by another key (forged)", () => {
      const sig = signHello(other, nonce, "r1", NOW);
      expect(checkHello(fields(miner.address), sig, check())).to.equal("bad_signature");
    });

    it("refuses a hello signed for another nonce or another router", () => {
      const sig = signHello(miner, new Uint8Array(32).fill(6), "r1", NOW);
      expect(checkHello(fields(miner.address), sig, check())).to.equal("bad_signature");
      const sig2 = signHello(miner, nonce, "r2", NOW);
      expect(checkHello(fields(miner.address), sig2, check())).to.equal("bad_signature");
    });

    it("refuses a stale hello and one from the future", () => {
      const old = signHello(miner, nonce, "r1", NOW - 31_000);
      expect(checkHello(fields(miner.address, NOW - 31_000), old, check())).to.equal("stale");
      const future = signHello(miner, nonce, "r1", NOW + 31_000);
      expect(checkHello(fields(miner.address, NOW + 31_000), future, check())).to.equal("stale");
    });

    it("refuses a replayed hello", () => {
      const c = check();
      const sig = signHello(miner, nonce, "r1", NOW);
      expect(checkHello(fields(miner.address), sig, c)).to.equal(null);
      expect(checkHello(fields(miner.address), sig, c)).to.equal("replayed");
    });

    it("refuses malformed hotkeys and signatures", () => {
      const sig = signHello(miner, nonce, "r1", NOW);
      expect(checkHello(fields("not-an-address"), sig, check())).to.equal("malformed");
      expect(checkHello(fields(miner.address), sig.subarray(0, 63), check())).to.equal("malformed");
    });
  });

  describe("validator calls", () => {
    const method = "/tensorclaw.v1.UsageReportService/GetUsage";
    const body = new Uint8Array([8, 1, 18, 3, 97, 98, 99]);
    const checkOpts = (routerId = "router-a") => ({
      routerId,
      nowMs: NOW,
      freshnessMs: 10_000,
      replay: new ReplayCache(20_000),
    });
    const getter = (md: Record<string, string>) => (k: string) => md[k];

    it("accepts a correctly signed call and returns the hotkey", () => {
      const md = signValidatorCall(miner, "router-a", method, body, NOW);
      expect(checkValidatorCall(getter(md), method, body, checkOpts())).to.deep.equal({
        ok: true,
        hotkey: miner.address,
      });
    });

    it("refuses unsigned calls", () => {
      const res = checkValidatorCall(() => undefined, method, body, checkOpts());
      expect(res.ok).to.equal(false);
      expect(res.ok === false && res.fault).to.equal("malformed");
    });

    it("refuses a call whose body, method or hotkey was changed (forged)", () => {
      const md = signValidatorCall(miner, "router-a", method, body, NOW);
      const r1 = checkValidatorCall(getter(md), method, new Uint8Array([8, 2]), checkOpts());
      expect(r1.ok === false && r1.fault).to.equal("bad_signature");
      const r2 = checkValidatorCall(getter(md), "/tensorclaw.v1.ProbeService/Probe", body, checkOpts());
      expect(r2.ok === false && r2.fault).to.equal("bad_signature");
      const swapped = { ...md, [VALIDATOR_METADATA.hotkey]: other.address };
      const r3 = checkValidatorCall(getter(swapped), method, body, checkOpts());
      expect(r3.ok === false && r3.fault).to.equal("bad_signature");
    });

    it("refuses stale and replayed calls", () => {
      const old = signValidatorCall(miner, "router-a", method, body, NOW - 10_001);
      const r1 = checkValidatorCall(getter(old), method, body, checkOpts());
      expect(r1.ok === false && r1.fault).to.equal("stale");
      const opts = checkOpts();
      const md = signValidatorCall(miner, "router-a", method, body, NOW);
      expect(checkValidatorCall(getter(md), method, body, opts).ok).to.equal(true);
      const r2 = checkValidatorCall(getter(md), method, body, opts);
      expect(r2.ok === false && r2.fault).to.equal("replayed");
    });

    it("binds a call to one router: another router refuses it by name, even with the id entry rewritten", () => {
      const md = signValidatorCall(miner, "router-a", method, body, NOW);
      expect(md[VALIDATOR_METADATA.routerId]).to.equal("router-a");
      const r1 = checkValidatorCall(getter(md), method, body, checkOpts("router-b"));
      expect(r1).to.deep.equal({
        ok: false,
        fault: "wrong_router",
        detail: 'this call is signed for router "router-a"; this router is "router-b"',
      });
      // Claiming router-b in the metadata does not help: the signature covers router-a.
      const rewritten = { ...md, [VALIDATOR_METADATA.routerId]: "router-b" };
      const r2 = checkValidatorCall(getter(rewritten), method, body, checkOpts("router-b"));
      expect(r2.ok === false && r2.fault).to.equal("bad_signature");
      const { [VALIDATOR_METADATA.routerId]: _dropped, ...unbound } = md;
      const r3 = checkValidatorCall(getter(unbound), method, body, checkOpts("router-a"));
      expect(r3.ok === false && r3.detail).to.match(/missing x-tc-router-id/);
      expect(checkValidatorCall(getter(md), method, body, checkOpts("router-a")).ok).to.equal(true);
    });

    it("refuses malformed metadata values", () => {
      const md = signValidatorCall(miner, "router-a", method, body, NOW);
      for (const [key, bad] of [
        [VALIDATOR_METADATA.timestampMs, "12a"],
        [VALIDATOR_METADATA.requestId, "short"],
        [VALIDATOR_METADATA.signature, "zz"],
        [VALIDATOR_METADATA.hotkey, "5xyz"],
      ] as const) {
        const r = checkValidatorCall(getter({ ...md, [key]: bad }), method, body, checkOpts());
        expect(r.ok === false && r.fault, key).to.equal("malformed");
      }
    });
  });

  describe("replay cache", () => {
    it("forgets keys after their time to live and bounds its size", () => {
      const c = new ReplayCache(1000, 3);
      expect(c.remember("a", 0)).to.equal(true);
      expect(c.remember("a", 999)).to.equal(false);
      expect(c.remember("a", 1000)).to.equal(true);
      for (const k of ["b", "c", "d", "e"]) c.remember(k, 1001);
      expect(c.size).to.equal(3);
    });
  });
});
