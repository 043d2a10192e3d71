import { expect } from "chai";
import { ReplayCache } from "../../common/replay-cache.js";
import { checkHello } from "../../common/signing.js";
import type { Challenge } from "../../gen/tensorclaw/v1/tunnel.js";
import { buildHello, challengeFault, clockSkewMs, MINER_PROTOCOL_VERSION } from "../../miner/tunnel/hello.js";
import { throwawayHotkey } from "../support/keys.js";

const challenge = (over: Partial<Challenge> = {}): Challenge => ({
  nonce: Buffer.alloc(32, 9),
  routerId: "router-eu-1",
  protocolVersion: 1,
  helloTimeoutMs: 10_000,
  serverTimeMs: 1_000_000n,
  ...over,
});

describe("miner hello", () => {
  it("signs a hello the router's own check accepts, for that router and nonce only", async () => {
    const key = await throwawayHotkey();
    const c = challenge();
    const offers = [{ id: "m", maxConcurrency: 2, contextLength: 0, kinds: [] }];
    const hello = buildHello(c, key, offers, 1_000_500, "tensorclaw-miner/test");
    expect(hello).to.include({
      hotkey: key.address,
      softwareVersion: "tensorclaw-miner/test",
      protocolVersion: MINER_PROTOCOL_VERSION,
    });
    expect(hello.models).to.deep.equal(offers);
    const verify = (routerId: string, nonce: Uint8Array) =>
      checkHello(
        { nonce, routerId, timestampMs: Number(hello.timestampMs), hotkey: hello.hotkey },
        hello.signature,
        {
          nowMs: 1_000_600,
          freshnessMs: 30_000,
          replay: new ReplayCache(60_000),
        },
      );
    expect(verify("router-eu-1", c.nonce)).to.equal(null);
    expect(verify("router-us-1", c.nonce)).to.equal("bad_signature");
    expect(verify("router-eu-1", Buffer.alloc(32, 8))).to.equal("bad_signature");
  });

  it("refuses challenges it cannot answer and measures clock skew", () => {
    expect(challengeFault(challenge())).to.equal(undefined);
    expect(challengeFault(challenge({ protocolVersion: 0 }))).to.match(/protocol version 0/);
    expect(challengeFault(challenge({ nonce: Buffer.alloc(0) }))).to.match(/no nonce/);
    expect(challengeFault(challenge({ routerId: "" }))).to.match(/no router id/);
    expect(clockSkewMs(challenge(), 1_012_000)).to.equal(12_000);
    expect(clockSkewMs(challenge({ serverTimeMs: 0n }), 5)).to.equal(undefined);
  });
});
