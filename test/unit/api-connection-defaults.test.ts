import { expect } from "chai";
import {
  DEFAULT_CONNECTIONS_PER_ADDRESS,
  DEFAULT_CONNECTIONS_TOTAL,
  defaultConnectionLimits,
} from "../../router/api/connection-limits.js";

describe("api connection limit defaults", () => {
  it("hold 8192 connections when descriptors are plenty, three quarters of a lower open-files limit otherwise", () => {
    expect(defaultConnectionLimits(1_048_576)).to.deep.equal({
      total: DEFAULT_CONNECTIONS_TOTAL,
      perAddress: DEFAULT_CONNECTIONS_PER_ADDRESS,
    });
    expect(defaultConnectionLimits(1024)).to.deep.equal({ total: 768, perAddress: 256 });
    expect(defaultConnectionLimits(200)).to.deep.equal({ total: 150, perAddress: 150 });
    expect(defaultConnectionLimits(undefined)).to.deep.equal({ total: 8192, perAddress: 256 });
  });
});
