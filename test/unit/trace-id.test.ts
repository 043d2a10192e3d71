import { expect } from "chai";
import { newTraceId, TRACE_ID } from "../../common/trace-id.js";

describe("trace ids", () => {
  it("are 32 hex characters, each drawn once, across refills of the random pool", () => {
    // 1,000 ids cross the 256-id pool several times: a pool that handed bytes out twice would repeat.
    const ids = Array.from({ length: 1000 }, () => newTraceId());
    for (const id of ids) expect(id).to.match(TRACE_ID);
    expect(new Set(ids).size).to.equal(ids.length);
  });

  it("take their 16 bytes from the random source given", () => {
    expect(newTraceId((n) => Buffer.alloc(n, 0xab))).to.equal("ab".repeat(16));
  });
});
