import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { parseMinerCommand } from "../../miner/config.js";
import { parseRouterCommand } from "../../router/config.js";
import { parseValidatorCommand } from "../../validator/config.js";

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    return (err as Error).message;
  }
  return expect.fail("accepted");
}

describe("router ids in the three programs' settings", () => {
  it("the router takes 1-128 visible ASCII characters as --router-id and refuses anything else", () => {
    expect(parseRouterCommand(["--router-id", "router-eu-1"], {}).config.routerId).to.equal("router-eu-1");
    expect(refusal(() => parseRouterCommand(["--router-id", "eu 1"], {}))).to.match(
      /--router-id: must be 1-128/,
    );
    expect(refusal(() => parseRouterCommand(["--router-id", "x".repeat(129)], {}))).to.match(/--router-id/);
  });

  it("miner and validator refuse a malformed ?id= at startup, naming --router", () => {
    const env = { TENSORCLAW_MNEMONIC: "unused here" };
    expect(parseMinerCommand(["--router", "grpc://h:1?id=r1"], env).config.router).to.deep.equal([
      "grpc://h:1?id=r1",
    ]);
    expect(refusal(() => parseMinerCommand(["--router", "grpc://h:1?id="], env))).to.match(/--router/);
    expect(refusal(() => parseMinerCommand(["--router", "grpc://h:1?name=r1"], env))).to.match(/--router/);
    const v = ["--dry-run", "--router"];
    expect(parseValidatorCommand([...v, "grpc://h:1?id=r1"], env).config.router).to.deep.equal([
      "grpc://h:1?id=r1",
    ]);
    expect(refusal(() => parseValidatorCommand([...v, "grpc://h:1?id=a&id=b"], env))).to.match(/--router/);
  });
});
