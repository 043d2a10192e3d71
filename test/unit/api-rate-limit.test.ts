import { expect } from "chai";
import { formatResetDuration, rateLimitHeaders } from "../../router/api/rate-limit-headers.js";
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

describe("rate-limit headers", () => {
  it("writes durations as OpenAI does (Go's notation), rounded up to the millisecond", () => {
    const cases: [number, string][] = [
      [0, "0s"],
      [-5, "0s"],
      [0.2, "1ms"],
      [120, "120ms"],
      [999.5, "1s"],
      [1000, "1s"],
      [1500, "1.5s"],
      [17_250, "17.25s"],
      [60_000, "1m0s"],
      [360_000, "6m0s"],
      [361_001, "6m1.001s"],
      [3_600_000, "1h0m0s"],
      [3_723_000, "1h2m3s"],
    ];
    for (const [ms, text] of cases) expect(formatResetDuration(ms), String(ms)).to.equal(text);
  });

  it("reports each limited bucket: its allowance, whole units left, and the time until it is full", () => {
    const h = new Map(
      rateLimitHeaders({ requestsPerMinute: 60, tokensPerMinute: 6000 }, { requests: 57.6, tokens: -300 }),
    );
    expect(Object.fromEntries(h)).to.deep.equal({
      "x-ratelimit-limit-requests": "60",
      "x-ratelimit-remaining-requests": "57",
      // 2.4 requests short at one per second.
      "x-ratelimit-reset-requests": "2.4s",
      "x-ratelimit-limit-tokens": "6000",
      // In debt: none left, and a full minute plus the debt to refill.
      "x-ratelimit-remaining-tokens": "0",
      "x-ratelimit-reset-tokens": "1m3s",
    });
  });

  it("leaves out the trio of an unlimited bucket", () => {
    const onlyTokens = rateLimitHeaders(
      { requestsPerMinute: 0, tokensPerMinute: 100 },
      { requests: 0, tokens: 100 },
    );
    expect(onlyTokens.map(([n]) => n)).to.deep.equal([
      "x-ratelimit-limit-tokens",
      "x-ratelimit-remaining-tokens",
      "x-ratelimit-reset-tokens",
    ]);
    expect(onlyTokens[2]?.[1]).to.equal("0s");
    expect(
      rateLimitHeaders({ requestsPerMinute: 0, tokensPerMinute: 0 }, { requests: 0, tokens: 0 }),
    ).to.deep.equal([]);
  });
});

rateLimiterContract("embedded", async () => ({ limiter: new EmbeddedRateLimiter(), close: async () => {} }));
