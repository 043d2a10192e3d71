import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { expect } from "chai";
import { keysCommand } from "../../cli/keys.js";
import { ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { DepositAddresses } from "../../router/billing/deposits/address.js";
import { runCli } from "../support/cli.js";

describe("tensorclaw keys deposit-address", () => {
  let dir: string;
  let file: string;
  let mnemonic: string;
  let keyId: string;
  let out: string;
  let err: string;
  const io = (env: Record<string, string>) => ({
    env,
    stdout: (t: string) => {
      out += t;
    },
    stderr: (t: string) => {
      err += t;
    },
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-deposit-cli-"));
    file = join(dir, "api-keys.json");
    mnemonic = mnemonicGenerate(12);
    const keys = new ApiKeys(new FileApiKeyStore(file));
    keyId = (await keys.create("alice", { requestsPerMinute: 1, tokensPerMinute: 1 }, Date.now())).record.id;
    out = "";
    err = "";
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("prints the key's hard-derived address from TENSORCLAW_TREASURY_MNEMONIC (child process)", async () => {
    const r = await runCli(["keys", "deposit-address", keyId, "--keys-file", file], {
      TENSORCLAW_TREASURY_MNEMONIC: mnemonic,
    });
    expect(r.code, r.stderr).to.equal(0);
    const expected = (await DepositAddresses.fromMnemonic(mnemonic)).address(keyId);
    expect(r.stdout).to.equal(`${expected}\n`);
    expect(r.stderr).to.contain(keyId);
    expect(r.stdout + r.stderr).to.not.contain(mnemonic.split(" ").slice(0, 3).join(" "));
  });

  it("--json gives the address and its derivation path", async () => {
    const code = await keysCommand.run(
      ["deposit-address", keyId, "--json", "--keys-file", file],
      io({ TENSORCLAW_TREASURY_MNEMONIC: mnemonic }),
    );
    expect(code, err).to.equal(0);
    expect(JSON.parse(out)).to.deep.equal({
      id: keyId,
      address: (await DepositAddresses.fromMnemonic(mnemonic)).address(keyId),
      path: `//tensorclaw//deposit//${keyId}`,
    });
  });

  it("refuses an unknown or revoked key, a missing or bad mnemonic, and a missing id", async () => {
    const env = { TENSORCLAW_TREASURY_MNEMONIC: mnemonic };
    expect(await keysCommand.run(["deposit-address", "key_nope", "--keys-file", file], io(env))).to.equal(1);
    expect(err).to.contain('no key with id "key_nope"');
    await new ApiKeys(new FileApiKeyStore(file)).revoke(keyId, Date.now());
    err = "";
    expect(await keysCommand.run(["deposit-address", keyId, "--keys-file", file], io(env))).to.equal(1);
    expect(err).to.contain("no active key");
    err = "";
    expect(await keysCommand.run(["deposit-address", keyId, "--keys-file", file], io({}))).to.equal(2);
    expect(err).to.contain("TENSORCLAW_TREASURY_MNEMONIC");
    const bad = `${mnemonic.split(" ").slice(0, 11).join(" ")} notaword`;
    err = "";
    const fresh = await new ApiKeys(new FileApiKeyStore(file)).create(
      "b",
      { requestsPerMinute: 1, tokensPerMinute: 1 },
      1,
    );
    expect(
      await keysCommand.run(
        ["deposit-address", fresh.record.id, "--keys-file", file],
        io({ TENSORCLAW_TREASURY_MNEMONIC: bad }),
      ),
    ).to.equal(2);
    expect(err).to.contain("not a valid BIP-39 mnemonic").and.not.contain("notaword");
    expect(await keysCommand.run(["deposit-address", "--keys-file", file], io(env))).to.equal(2);
    expect(out).to.equal("");
  });
});
