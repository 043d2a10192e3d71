import { expect } from "chai";
import { requireSubtensorMetadata } from "../support/validator-chain-provider.js";

describe("the Subtensor metadata fixture check of the chain tests", () => {
  const MISSING = "/nonexistent/metadata.scale";
  /** A mocha context whose skip() is observable instead of skipping this test. */
  const recorder = () => {
    const calls: string[] = [];
    const ctx = {
      skip: (): never => {
        calls.push("skip");
        throw new Error("skipped");
      },
    };
    return { ctx, calls };
  };

  it("fails under CI=true, naming the missing path, and does not skip", () => {
    const { ctx, calls } = recorder();
    expect(() => requireSubtensorMetadata(ctx, { CI: "true", SUBTENSOR_METADATA: MISSING })).to.throw(
      /CI=true .*\/nonexistent\/metadata\.scale/,
    );
    expect(calls).to.deep.equal([]);
  });

  it("skips outside CI", () => {
    const { ctx, calls } = recorder();
    expect(() => requireSubtensorMetadata(ctx, { SUBTENSOR_METADATA: MISSING })).to.throw("skipped");
    expect(calls).to.deep.equal(["skip"]);
  });

  it("returns the fixture's path when the file is there", () => {
    const { ctx } = recorder();
    const here = new URL(import.meta.url).pathname;
    expect(requireSubtensorMetadata(ctx, { CI: "true", SUBTENSOR_METADATA: here })).to.equal(here);
  });
});
