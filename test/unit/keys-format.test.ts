import { expect } from "chai";
import { parseUsd, usd } from "../../cli/keys-format.js";
import { TensorClawError } from "../../common/errors.js";

describe("keys CLI amounts", () => {
  it("reads USD as exact micros, negative for corrections, with no float rounding", () => {
    expect(parseUsd("x", "10")).to.equal(10_000_000);
    expect(parseUsd("x", "2.5")).to.equal(2_500_000);
    expect(parseUsd("x", "-0.000001")).to.equal(-1);
    // 0.29 × 1e6 is 289999.99999999994 in floating point: the digits are taken as written.
    expect(parseUsd("x", "0.29")).to.equal(290_000);
    expect(parseUsd("x", " 1.000001 ")).to.equal(1_000_001);
    expect(parseUsd("x", "1000000000")).to.equal(1e15);
  });

  it("refuses what is not USD with at most 6 decimals, naming the setting", () => {
    for (const bad of ["", "abc", "1e3", "1.0000001", "+5", "1,5", ".5", "5.", "0x10", "1000000001"]) {
      expect(() => parseUsd("--credits", bad), bad)
        .to.throw(TensorClawError, /--credits/)
        .with.property("code", "config_invalid");
    }
  });

  it("prints micros as USD with every micro shown and at least two decimals", () => {
    expect(usd(10_000_000)).to.equal("10.00");
    expect(usd(12_500_000)).to.equal("12.50");
    expect(usd(1_234)).to.equal("0.001234");
    expect(usd(1_200)).to.equal("0.0012");
    expect(usd(0)).to.equal("0.00");
    expect(usd(-250_000)).to.equal("-0.25");
    expect(usd(19_665_426)).to.equal("19.665426");
    for (const m of [1, 7, 290_000, 123_456_789, -1]) expect(parseUsd("x", usd(m))).to.equal(m);
  });
});
