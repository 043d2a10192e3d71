import { expect } from "chai";
import type { Hotkey } from "../../common/identity.js";
import { ReplayCache } from "../../common/replay-cache.js";
import { signHello } from "../../common/signing.js";
import { type Hello, RejectReason, RequestKind } from "../../gen/tensorclaw/v1/tunnel.js";
import { judgeHello, OFFER_LIMITS, validateOffers } from "../../router/tunnel/hello.js";
import { throwawayHotkey } from "../support/keys.js";

const NOW = 1_800_000_000_000;
const NONCE = new Uint8Array(32).fill(3);

describe("tunnel hello verdicts", () => {
  let key: Hotkey;
  before(async () => {
    key = await throwawayHotkey();
  });

  function hello(over: Partial<Hello> = {}, ts = NOW): Hello {
    return {
      hotkey: key.address,
      signature: Buffer.from(signHello(key, NONCE, "r1", ts)),
      timestampMs: BigInt(ts),
      models: [{ id: "m", maxConcurrency: 2, contextLength: 0, kinds: [] }],
      softwareVersion: "x/1",
      protocolVersion: 1,
      ...over,
    };
  }
  const ctx = (replay = new ReplayCache(60_000)) => ({
    nonce: NONCE,
    routerId: "r1",
    nowMs: NOW,
    freshnessMs: 30_000,
    replay,
  });

  it("accepts a good hello and returns its offers", () => {
    const v = judgeHello(hello(), ctx());
    expect(v).to.deep.equal({
      ok: true,
      hotkey: key.address,
      offers: [{ id: "m", maxConcurrency: 2, contextLength: 0, kinds: ["chat"] }],
    });
  });

  it("keeps each offer's kinds: empty is chat only, unknown values dropped, duplicates collapsed", () => {
    const kinds = (k: RequestKind[]) => {
      const offers = validateOffers([{ id: "a", maxConcurrency: 1, contextLength: 0, kinds: k }]);
      if (typeof offers === "string") throw new Error(offers);
      return offers[0]?.kinds;
    };
    expect(kinds([])).to.deep.equal(["chat"]);
    expect(kinds([RequestKind.REQUEST_KIND_EMBEDDING])).to.deep.equal(["embedding"]);
    expect(
      kinds([
        RequestKind.REQUEST_KIND_EMBEDDING,
        RequestKind.REQUEST_KIND_CHAT,
        RequestKind.REQUEST_KIND_EMBEDDING,
        RequestKind.REQUEST_KIND_COMPLETION,
      ]),
    ).to.deep.equal(["chat", "completion", "embedding"]);
    // A newer peer's kind (and UNSPECIFIED) is ignored, not refused: what is left is kept.
    expect(kinds([99 as RequestKind, RequestKind.REQUEST_KIND_COMPLETION])).to.deep.equal(["completion"]);
    expect(kinds([99 as RequestKind, RequestKind.REQUEST_KIND_UNSPECIFIED])).to.deep.equal([]);
  });

  it("maps each fault to its RejectReason", () => {
    const reason = (h: Hello, replay?: ReplayCache) => {
      const v = judgeHello(h, ctx(replay));
      return v.ok ? "ok" : v.reason;
    };
    expect(reason(hello({ protocolVersion: 0 }))).to.equal(RejectReason.REJECT_REASON_UNSUPPORTED_VERSION);
    expect(reason(hello({ hotkey: "not-an-address" }))).to.equal(RejectReason.REJECT_REASON_INVALID_HELLO);
    expect(reason(hello({ signature: Buffer.alloc(10) }))).to.equal(RejectReason.REJECT_REASON_INVALID_HELLO);
    expect(reason(hello({ timestampMs: 2n ** 62n }))).to.equal(RejectReason.REJECT_REASON_INVALID_HELLO);
    expect(reason(hello({ signature: Buffer.alloc(64, 1) }))).to.equal(
      RejectReason.REJECT_REASON_BAD_SIGNATURE,
    );
    expect(reason(hello({}, NOW + 30_001))).to.equal(RejectReason.REJECT_REASON_STALE);
    const replay = new ReplayCache(60_000);
    const h = hello();
    expect(reason(h, replay)).to.equal("ok");
    expect(reason(h, replay)).to.equal(RejectReason.REJECT_REASON_REPLAYED);
  });

  it("validates offers: ids, duplicates, concurrency bounds and count", () => {
    expect(validateOffers([{ id: "", maxConcurrency: 1, contextLength: 0, kinds: [] }])).to.be.a("string");
    expect(
      validateOffers([
        { id: "a", maxConcurrency: 1, contextLength: 0, kinds: [] },
        { id: "a", maxConcurrency: 2, contextLength: 0, kinds: [] },
      ]),
    ).to.match(/twice/);
    expect(validateOffers([{ id: "a", maxConcurrency: 0, contextLength: 0, kinds: [] }])).to.match(
      /max_concurrency/,
    );
    expect(
      validateOffers([
        { id: "a", maxConcurrency: OFFER_LIMITS.maxConcurrency + 1, contextLength: 0, kinds: [] },
      ]),
    ).to.match(/max_concurrency/);
    const many = Array.from({ length: OFFER_LIMITS.maxModels + 1 }, (_, i) => ({
      id: `m${i}`,
      maxConcurrency: 1,
      contextLength: 0,
      kinds: [],
    }));
    expect(validateOffers(many)).to.match(/more than/);
    expect(validateOffers([])).to.deep.equal([]);
  });
});
