import { expect } from "chai";
import { TensorClawError } from "../../common/errors.js";
import { parseValidatorCommand } from "../../validator/config.js";

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(TensorClawError);
    return (err as Error).message;
  }
  return expect.fail("expected a config_invalid error");
}

describe("validator config", () => {
  const base = ["--dry-run", "--router", "grpc://127.0.0.1:1"];

  it("reads the mnemonic from TENSORCLAW_MNEMONIC only", () => {
    const ok = parseValidatorCommand(base, { TENSORCLAW_MNEMONIC: "abandon words" });
    expect(ok.config.mnemonic).to.equal("abandon words");
    expect(configError(() => parseValidatorCommand([...base, "--mnemonic", "x y"], {}))).to.match(
      /--mnemonic: set TENSORCLAW_MNEMONIC/,
    );
    expect(configError(() => parseValidatorCommand([...base, "--mnemonic=x"], {}))).to.match(/--mnemonic/);
  });

  it("validates latency tiers at startup", () => {
    expect(
      parseValidatorCommand([...base, "--latency-tiers", "300:80,2000:30"], {}).config.latencyTiers,
    ).to.equal("300:80,2000:30");
    expect(
      configError(() => parseValidatorCommand([...base, "--latency-tiers", "500:90,250:80,2000:20"], {})),
    ).to.match(/--latency-tiers/);
  });

  it("knows one subcommand, and needs a router", () => {
    expect(parseValidatorCommand(["scores", "--router", "grpc://r:1"], {}).positionals).to.deep.equal([
      "scores",
    ]);
    expect(configError(() => parseValidatorCommand(["score", "--router", "grpc://r:1"], {}))).to.match(
      /only subcommand is "scores"/,
    );
    expect(configError(() => parseValidatorCommand(["--dry-run"], {}))).to.match(/--router: at least one/);
    expect(configError(() => parseValidatorCommand(["--router", "http://r:1", "--dry-run"], {}))).to.match(
      /--router/,
    );
  });

  it("defaults to enough probe concurrency for a 256-miner round", () => {
    const c = parseValidatorCommand(base, {}).config;
    expect(c.probeConcurrency).to.equal(256);
    expect(c.probeTimeoutMs).to.equal(8000);
    expect(c.probeIntervalS).to.equal(60);
  });
});
