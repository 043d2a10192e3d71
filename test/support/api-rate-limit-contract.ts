import { expect } from "chai";
import type { RateLimiter, Reservation, ReserveResult } from "../../router/api/rate-limiter.js";

/** The reservation of a granted result; fails the test when it was refused. */
export function grantOf(r: ReserveResult): Reservation {
  if (!r.ok) throw new Error(`expected a grant, got a refusal (retry after ${r.retryAfterMs} ms)`);
  return r.reservation;
}

/** A limiter under test and how to dispose of it. */
export interface LimiterFixture {
  readonly limiter: RateLimiter;
  close(): Promise<void>;
}

/**
 * The behaviour every RateLimiter must show, embedded or Redis: the same
 * suite runs against both so the TypeScript and Lua arithmetic cannot drift.
 */
export function rateLimiterContract(name: string, make: () => Promise<LimiterFixture>): void {
  describe(`rate limiter contract: ${name}`, () => {
    let fx: LimiterFixture;
    let n = 0;
    const key = () => `k${n++}-${Math.random().toString(36).slice(2)}`;
    beforeEach(async () => {
      fx = await make();
    });
    afterEach(async () => {
      await fx.close();
    });

    it("allows a burst of requests-per-minute, then refuses with the time to the next slot", async () => {
      const k = key();
      const lim = { requestsPerMinute: 6, tokensPerMinute: 0 };
      for (let i = 0; i < 6; i++) expect((await fx.limiter.reserve(k, lim, 0, 1000)).ok).to.equal(true);
      expect(await fx.limiter.reserve(k, lim, 0, 1000)).to.deep.equal({
        ok: false,
        retryAfterMs: 10_000,
        levels: { requests: 0, tokens: 0 },
      });
      expect((await fx.limiter.reserve(k, lim, 0, 6000)).ok).to.equal(false);
      expect((await fx.limiter.reserve(k, lim, 0, 11_000)).ok).to.equal(true);
      expect((await fx.limiter.reserve(k, lim, 0, 11_000)).ok).to.equal(false);
    });

    it("limits tokens per minute and gives back what was reserved but not used", async () => {
      const k = key();
      const lim = { requestsPerMinute: 0, tokensPerMinute: 1000 };
      const first = grantOf(await fx.limiter.reserve(k, lim, 800, 0));
      const refused = await fx.limiter.reserve(k, lim, 800, 0);
      expect(refused).to.deep.equal({
        ok: false,
        retryAfterMs: 36_000,
        levels: { requests: 0, tokens: 200 },
      });
      await fx.limiter.reconcile(first, 100, 0);
      expect((await fx.limiter.reserve(k, lim, 800, 0)).ok).to.equal(true);
    });

    it("gives back the request itself when asked (refused for capacity), never above the allowance", async () => {
      const k = key();
      const lim = { requestsPerMinute: 2, tokensPerMinute: 0 };
      const first = grantOf(await fx.limiter.reserve(k, lim, 0, 0));
      grantOf(await fx.limiter.reserve(k, lim, 0, 0));
      expect((await fx.limiter.reserve(k, lim, 0, 0)).ok).to.equal(false);
      await fx.limiter.reconcile(first, 0, 0, true);
      const again = grantOf(await fx.limiter.reserve(k, lim, 0, 0));
      expect((await fx.limiter.reserve(k, lim, 0, 0)).ok).to.equal(false);
      // Without the flag the request stays taken.
      await fx.limiter.reconcile(again, 0, 0);
      expect((await fx.limiter.reserve(k, lim, 0, 0)).ok).to.equal(false);
      // A refund never lifts the bucket above a minute's allowance.
      const k2 = key();
      const r = grantOf(await fx.limiter.reserve(k2, lim, 0, 0));
      await fx.limiter.reconcile(r, 0, 0, true);
      await fx.limiter.reconcile(r, 0, 0, true);
      expect((await fx.limiter.reserve(k2, lim, 0, 0)).levels).to.deep.equal({ requests: 1, tokens: 0 });
    });

    it("settles tokens and gives back the request in one step", async () => {
      const k = key();
      const lim = { requestsPerMinute: 1, tokensPerMinute: 1000 };
      const r = grantOf(await fx.limiter.reserve(k, lim, 900, 0));
      await fx.limiter.reconcile(r, 0, 0, true);
      expect((await fx.limiter.reserve(k, lim, 1000, 0)).levels).to.deep.equal({ requests: 0, tokens: 0 });
    });

    it("charges usage above the reservation as debt that later requests wait for", async () => {
      const k = key();
      const lim = { requestsPerMinute: 0, tokensPerMinute: 600 };
      await fx.limiter.reconcile(grantOf(await fx.limiter.reserve(k, lim, 100, 0)), 1200, 0);
      // Level is now -600 (debt capped at one minute): 10 tokens need 61 s.
      expect(await fx.limiter.reserve(k, lim, 10, 0)).to.deep.equal({
        ok: false,
        retryAfterMs: 61_000,
        levels: { requests: 0, tokens: -600 },
      });
      expect((await fx.limiter.reserve(k, lim, 10, 61_000)).ok).to.equal(true);
    });

    it("hands back a reservation naming the key, its limits and the whole tokens taken", async () => {
      const k = key();
      const lim = { requestsPerMinute: 0, tokensPerMinute: 1000 };
      const r = grantOf(await fx.limiter.reserve(k, lim, 99.2, 0));
      expect(r).to.deep.equal({ keyId: k, limits: lim, tokens: 100 });
      // Settling gives back exactly the rounded reservation: 900 + 100 - 0 = a full bucket again.
      await fx.limiter.reconcile(r, 0, 0);
      expect((await fx.limiter.reserve(k, lim, 1000, 0)).ok).to.equal(true);
      expect((await fx.limiter.reserve(k, lim, 1, 0)).ok).to.equal(false);
    });

    it("lets a request bigger than the whole allowance through once the bucket is full", async () => {
      const k = key();
      const lim = { requestsPerMinute: 0, tokensPerMinute: 100 };
      expect((await fx.limiter.reserve(k, lim, 5000, 0)).ok).to.equal(true);
      expect((await fx.limiter.reserve(k, lim, 5000, 30_000)).ok).to.equal(false);
    });

    it("reports the levels each reservation left (refill included), and those it found when refused", async () => {
      const k = key();
      const lim = { requestsPerMinute: 10, tokensPerMinute: 1000 };
      const first = await fx.limiter.reserve(k, lim, 100, 0);
      expect(first.ok).to.equal(true);
      expect(first.levels).to.deep.equal({ requests: 9, tokens: 900 });
      // 6 s later one request and 100 tokens came back: 10 - 1 and 1000 - 300.
      expect((await fx.limiter.reserve(k, lim, 300, 6000)).levels).to.deep.equal({
        requests: 9,
        tokens: 700,
      });
      // A request for the whole minute does not fit 700: refused, nothing taken, levels as found.
      expect(await fx.limiter.reserve(k, lim, 5000, 6000)).to.deep.equal({
        ok: false,
        retryAfterMs: 18_000,
        levels: { requests: 9, tokens: 700 },
      });
      // Fractions survive: 1.5 s later a quarter request and 25 tokens came back.
      expect((await fx.limiter.reserve(k, lim, 0, 7500)).levels).to.deep.equal({
        requests: 8.25,
        tokens: 725,
      });
      // A key with no limits computes nothing and reports no levels.
      const none = await fx.limiter.reserve(key(), { requestsPerMinute: 0, tokensPerMinute: 0 }, 10, 0);
      expect(none.ok).to.equal(true);
      expect(none).not.to.have.property("levels");
    });

    it("keeps keys independent and treats 0 as unlimited", async () => {
      const a = key();
      const b = key();
      const lim = { requestsPerMinute: 1, tokensPerMinute: 0 };
      expect((await fx.limiter.reserve(a, lim, 0, 0)).ok).to.equal(true);
      expect((await fx.limiter.reserve(a, lim, 0, 0)).ok).to.equal(false);
      expect((await fx.limiter.reserve(b, lim, 0, 0)).ok).to.equal(true);
      const none = { requestsPerMinute: 0, tokensPerMinute: 0 };
      for (let i = 0; i < 20; i++) expect((await fx.limiter.reserve(a, none, 1e9, 0)).ok).to.equal(true);
    });

    it("holds under 50 concurrent reservations", async () => {
      const k = key();
      const lim = { requestsPerMinute: 20, tokensPerMinute: 3000 };
      const results = await Promise.all(
        Array.from({ length: 50 }, () => fx.limiter.reserve(k, lim, 100, 5000)),
      );
      expect(results.filter((r) => r.ok)).to.have.length(20);
      const lim2 = { requestsPerMinute: 1000, tokensPerMinute: 3000 };
      const k2 = key();
      const results2 = await Promise.all(
        Array.from({ length: 50 }, () => fx.limiter.reserve(k2, lim2, 100, 5000)),
      );
      expect(results2.filter((r) => r.ok)).to.have.length(30);
    });
  });
}
