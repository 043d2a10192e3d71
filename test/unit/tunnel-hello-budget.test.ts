import { expect } from "chai";
import { HelloBudget, peerAddress } from "../../router/tunnel/hello-budget.js";

describe("tunnel hello budget", () => {
  it("grants a one-second burst, then one check per 1/rate seconds, and says how long to wait", () => {
    const b = new HelloBudget(4);
    const t0 = 1_000_000;
    expect([b.take(t0), b.take(t0), b.take(t0), b.take(t0)]).to.deep.equal([0, 0, 0, 0]);
    expect(b.take(t0)).to.equal(250);
    expect(b.take(t0 + 100)).to.equal(150);
    expect(b.take(t0 + 250)).to.equal(0);
    expect(b.take(t0 + 250)).to.equal(250);
  });

  it("banks at most one second of checks however long it was idle", () => {
    const b = new HelloBudget(2);
    const t0 = 5_000;
    b.take(t0);
    b.take(t0);
    const later = t0 + 60_000;
    expect([b.take(later), b.take(later), b.take(later)]).to.deep.equal([0, 0, 500]);
  });

  it("does not refill when the clock steps back", () => {
    const b = new HelloBudget(1);
    expect(b.take(10_000)).to.equal(0);
    expect(b.take(9_000)).to.equal(1000);
    expect(b.take(10_000)).to.equal(1000);
    expect(b.take(11_000)).to.equal(0);
  });

  it("keys peers by address: ports dropped, IPv6 kept whole", () => {
    expect(peerAddress("10.1.2.3:5555")).to.equal("10.1.2.3");
    expect(peerAddress("[::1]:5555")).to.equal("::1");
    expect(peerAddress("[2001:db8::7]")).to.equal("2001:db8::7");
    expect(peerAddress("::ffff:127.0.0.1")).to.equal("::ffff:127.0.0.1");
    expect(peerAddress("127.0.0.1")).to.equal("127.0.0.1");
    expect(peerAddress("unknown")).to.equal("unknown");
  });
});
