import { expect } from "chai";
import {
  EmbeddedRateLimiter,
  reconcileBuckets,
  refill,
  reserveBuckets,
} from "../../router/api/rate-limiter.js";
import { rateLimiterContract } from "../support/api-rate-limit-contract.js";

describe("rate limit arithmetic", () => {
  const lim = { requestsPerMinute: 60, tokensPerMinute: 6000 };

  it("starts full and refills linearly up to the cap", () => {
    const s = refill(undefined, lim, 0);
    expect(s).to.deep.equal({ requests: 60, tokens: 6000, atMs: 0 });
    const drained = { requests: 0, tokens: 0, atMs: 0 };
    expect(refill(drained, lim, 1000)).to.deep.equal({ requests: 1, tokens: 100, atMs: 1000 });
    expect(refill(drained, lim, 600_000)).to.deep.equal({ requests: 60, tokens: 6000, atMs: 600_000 });
  });

  it("ignores a clock that goes backwards", () => {
    expect(refill({ requests: 1, tokens: 1, atMs: 5000 }, lim, 1000).requests).to.equal(1);
  });

  it("refuses without taking anything and says how long to wait for the scarcer bucket", () => {
    const s = { requests: 0.5, tokens: 50, atMs: 0 };
    const { state, result } = reserveBuckets(s, lim, 200, 0);
    expect(result).to.deep.equal({ ok: false, retryAfterMs: 1500 });
    expect(state.requests).to.equal(0.5);
    expect(state.tokens).to.equal(50);
  });

  it("takes one request and the tokens when both fit", () => {
    const { state, result } = reserveBuckets(undefined, lim, 250, 0);
    expect(result.ok).to.equal(true);
    expect(state.requests).to.equal(59);
    expect(state.tokens).to.equal(5750);
  });

  it("bounds debt to one minute's allowance and credit to a full bucket", () => {
    expect(reconcileBuckets(undefined, lim, 0, 1e9, 0).tokens).to.equal(-6000);
    expect(reconcileBuckets({ requests: 60, tokens: 5900, atMs: 0 }, lim, 500, 0, 0).tokens).to.equal(6000);
  });
});

rateLimiterContract("embedded", async () => ({ limiter: new EmbeddedRateLimiter(), close: async () => {} }));
