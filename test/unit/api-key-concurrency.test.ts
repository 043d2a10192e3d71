import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { KeyConcurrency } from "../../router/api/key-concurrency.js";

describe("api key concurrency", () => {
  it("grants a key its slots, refuses the next with rate_limited, and frees a slot on release (once)", () => {
    const c = new KeyConcurrency(2);
    const r1 = c.enter("a");
    c.enter("a");
    expect(() => c.enter("a"))
      .to.throw(TensorClawError)
      .with.property("code", "rate_limited");
    c.enter("b");
    r1();
    r1();
    expect(c.inFlight("a")).to.equal(1);
    c.enter("a");
    expect(c.inFlight("a")).to.equal(2);
  });

  it("caps nothing at 0", () => {
    const c = new KeyConcurrency(0);
    for (let i = 0; i < 100; i++) c.enter("a");
    expect(c.inFlight("a")).to.equal(0);
  });
});
