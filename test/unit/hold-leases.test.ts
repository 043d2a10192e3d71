import { expect } from "chai";
import { silentLogger } from "../../common/logger.js";
import { HoldLeases, type HoldTicket, LEASE_REQUESTS } from "../../router/api/hold-leases.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { BILLING_OPTIONS } from "../support/billing-contract.js";
import { WatchedBilling } from "../support/billing-watch.js";

const KEY = "key_00000000000000aa";
const TTL = 60_000;

describe("hold leases", () => {
  let store: WatchedBilling;
  let now: number;
  const clock = () => now;

  async function fund(micros: number): Promise<void> {
    await store.configure(KEY, { metered: true, budgetDailyMicros: null }, now);
    await store.credit({
      id: "fund",
      keyId: KEY,
      amountMicros: micros,
      note: "",
      source: "operator",
      atMs: now,
    });
  }
  const ticket = (r: Awaited<ReturnType<HoldLeases["draw"]>>): HoldTicket => {
    if ("ok" in r) throw new Error(`refused: ${JSON.stringify(r)}`);
    return r;
  };

  beforeEach(async () => {
    now = Date.now();
    store = new WatchedBilling(await EmbeddedBilling.open({ ...BILLING_OPTIONS, nowMs: now }));
  });

  it("asks the store once for a lease of many requests and serves the next ones from memory", async () => {
    await fund(1_000_000);
    const leases = new HoldLeases(store, silentLogger(), { fillMs: 60_000, graceMs: 0 });
    const tickets = [];
    for (let i = 0; i < LEASE_REQUESTS; i++) tickets.push(ticket(await leases.draw(KEY, 100, clock, TTL)));
    expect(store.of("hold").map((c) => c.amountMicros)).to.deep.equal([LEASE_REQUESTS * 100]);
    expect(new Set(tickets.map((t) => t.holdId)).size).to.equal(1);
    // The lease is used up: the next request opens another.
    ticket(await leases.draw(KEY, 100, clock, TTL));
    expect(store.of("hold")).to.have.length(2);
    expect((await store.account(KEY, now)).heldMicros).to.equal(2 * LEASE_REQUESTS * 100);
  });

  it("keeps what a request costs drawn and gives the rest of its hold back to the lease", async () => {
    await fund(1_000_000);
    const leases = new HoldLeases(store, silentLogger(), { fillMs: 60_000, graceMs: 0 });
    const t = ticket(await leases.draw(KEY, 1000, clock, TTL));
    expect(leases.unusedMicros(KEY)).to.equal((LEASE_REQUESTS - 1) * 1000);
    leases.finish(t, 300);
    expect(leases.unusedMicros(KEY)).to.equal(LEASE_REQUESTS * 1000 - 300);
    const u = ticket(await leases.draw(KEY, 1000, clock, TTL));
    leases.finish(u, 0);
    expect(leases.unusedMicros(KEY)).to.equal(LEASE_REQUESTS * 1000 - 300);
    expect(store.of("hold")).to.have.length(1);
  });

  it("leases what the key has when that is less than a lease, and refuses a request it cannot cover", async () => {
    await fund(2500);
    const leases = new HoldLeases(store, silentLogger(), { fillMs: 60_000, graceMs: 0 });
    const a = ticket(await leases.draw(KEY, 1000, clock, TTL));
    expect(store.of("hold").map((c) => c.amountMicros)).to.deep.equal([LEASE_REQUESTS * 1000, 2500]);
    ticket(await leases.draw(KEY, 1000, clock, TTL));
    // 500 left in the lease and nothing in the key: refused, with what could be held now.
    expect(await leases.draw(KEY, 1000, clock, TTL)).to.deep.equal({
      ok: false,
      reason: "credits",
      availableMicros: 0,
    });
    leases.finish(a, 0);
    ticket(await leases.draw(KEY, 1000, clock, TTL));
  });

  it("runs exactly the requests a balance covers when 100 arrive at once", async () => {
    await fund(10 * 777);
    const leases = new HoldLeases(store, silentLogger(), { fillMs: 60_000, graceMs: 0 });
    const results = await Promise.all(Array.from({ length: 100 }, () => leases.draw(KEY, 777, clock, TTL)));
    expect(results.filter((r) => !("ok" in r))).to.have.length(10);
    expect(results.filter((r) => "ok" in r)).to.have.length(90);
  });

  it("stops taking requests after its fill time and is released once its last request ended", async () => {
    await fund(1_000_000);
    const leases = new HoldLeases(store, silentLogger(), { fillMs: 50, graceMs: 10 });
    const t = ticket(await leases.draw(KEY, 100, clock, TTL));
    now += 50;
    const u = ticket(await leases.draw(KEY, 100, clock, TTL));
    expect(u.holdId).to.not.equal(t.holdId);
    // The first lease's fill time ends while its request runs: no release until it ends.
    await new Promise((r) => setTimeout(r, 100));
    expect(store.of("release")).to.deep.equal([]);
    leases.finish(t, 40);
    await store.until(() => store.of("release").some((c) => c.requestId === t.holdId));
    await store.idle();
    expect(leases.unusedMicros(KEY)).to.equal(LEASE_REQUESTS * 100 - 100);
    // Its store hold is gone; the cost it kept is charged by settling, not by the release.
    expect((await store.account(KEY, now)).heldMicros).to.equal(LEASE_REQUESTS * 100);
    leases.finish(u, 0);
    await store.until(() => store.of("release").some((c) => c.requestId === u.holdId));
    await store.idle();
    expect((await store.account(KEY, now)).heldMicros).to.equal(0);
    expect(leases.unusedMicros(KEY)).to.equal(0);
  });
});
