// A dry-run validator on a simulated chain (`--simulate-chain`), as the dev
// network runs it: with commit-reveal on it prints the timelocked commit it
// would make (reveal round, size, ciphertext) and the ciphertext really
// opens, with quicknet's real pulse, to the weights it printed; with it off
// it prints the set_weights call. In process with a pinned clock, then as a
// child process on the wall clock.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeAddress, mnemonicGenerate } from "@polkadot/util-crypto";
import { expect } from "chai";
import { systemClock } from "../../common/clock.js";
import type { Hotkey } from "../../common/identity.js";
import { silentLogger } from "../../common/logger.js";
import { DEFAULT_LATENCY_TIERS } from "../../validator/latency-tiers.js";
import { RouterClient } from "../../validator/router-client.js";
import { SimulatedChain, type SimulatedChainMode } from "../../validator/simulated-chain.js";
import { FileStateStore } from "../../validator/state-store-file.js";
import { QUICKNET } from "../../validator/tlock-quicknet.js";
import { Validator } from "../../validator/validator.js";
import { runCli } from "../support/cli.js";
import { throwawayHotkey } from "../support/keys.js";
import { parseTlock, tlockDecrypt } from "../support/tlock-decrypt.js";
import { okProbe, type RouterStandIn, session, startRouterStandIn } from "../support/validator-router.js";

const SIG_1000 = Buffer.from(
  (
    JSON.parse(
      readFileSync(new URL("../fixtures/tlock/quicknet-round-1000.json", import.meta.url), "utf8"),
    ) as { signature: string }
  ).signature,
  "hex",
);

/**
 * Worked out by hand from the SDK's rule, as in validator-chain-tlock: at
 * block 10_000 (netuid 92, tempo 360: epoch 27) the reveal epoch 28 starts
 * at block 10_015, aimed at 10_018, 18 blocks of 12 s away; this wall clock
 * puts that block 1.5 s into quicknet round 1000. The simulated genesis
 * puts the clock 0.5 s into block 10_000.
 */
const NOW_MS = QUICKNET.genesisTimeSec * 1000 + 1000 * 3000 + 1500 - 18 * 12_000;
const GENESIS_MS = NOW_MS - 10_000 * 12_000 - 500;

/** The commit line a dry run prints, and the ciphertext line under it. */
const TIMELOCK_LINE =
  /would commit_timelocked_weights\(netuid (\d+), (\d+)-byte ciphertext of uids \[([\d,]*)\] values \[([\d,]*)\], reveal_round (\d+), commit_reveal_version (\d+)\) as uid (\d+); the chain opens it in the epoch from block (\d+)\n {2}ciphertext 0x([0-9a-f]+)\n/;

/** Reads SCALE `WeightsTlockPayload { hotkey: Vec<u8>, uids: Vec<u16>, values: Vec<u16>, version_key: u64 }`. */
function decodePayload(b: Uint8Array) {
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  let at = 0;
  // Every length here is below 64: SCALE's one-byte compact form, value << 2.
  const len = () => {
    const v = b[at] ?? 0;
    expect(v & 3, "one-byte compact").to.equal(0);
    at += 1;
    return v >> 2;
  };
  const hotkey = b.slice(at + 1, at + 1 + len());
  at += hotkey.length;
  const u16s = () =>
    Array.from({ length: len() }, () => {
      const v = view.getUint16(at, true);
      at += 2;
      return v;
    });
  const uids = u16s();
  const values = u16s();
  const versionKey = view.getBigUint64(at, true);
  at += 8;
  expect(at, "payload fully read").to.equal(b.length);
  return { hotkey, uids, values, versionKey };
}

describe("validator on a simulated chain (dry run)", function () {
  this.timeout(30_000);
  let validatorKey: Hotkey;
  let router: RouterStandIn;
  let client: RouterClient;
  let dir: string;

  before(async () => {
    validatorKey = await throwawayHotkey();
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-validator-sim-"));
    router = await startRouterStandIn({
      sessions: [session("5MINER-B"), session("5MINER-A")],
      probe: () => okProbe(50),
    });
    client = new RouterClient([router.url], { signer: validatorKey, logger: silentLogger() });
  });
  afterEach(async () => {
    client?.close();
    await router?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** One probe round and one printed scoring pass; returns what was printed. */
  const dryPass = async (mode: SimulatedChainMode): Promise<string> => {
    const chain = new SimulatedChain({
      mode,
      selfHotkey: validatorKey.address,
      hotkeys: async () => (await client.listMiners()).sessions.map((s) => s.hotkey),
      nowMs: () => NOW_MS,
      genesisMs: GENESIS_MS,
    });
    let out = "";
    const v = new Validator({
      router: client,
      store: await FileStateStore.open(join(dir, "state.json")),
      chain,
      selfHotkey: validatorKey.address,
      settings: {
        netuid: 92,
        dryRun: true,
        probeConcurrency: 8,
        probeTimeoutMs: 2000,
        probeIntervalMs: 60_000,
        weightsIntervalMs: 60_000,
        latencyTiers: DEFAULT_LATENCY_TIERS,
      },
      clock: { ...systemClock, now: () => NOW_MS },
      randomBytes: (n) => randomBytes(n),
      logger: silentLogger(),
      print: (t) => {
        out += t;
      },
    });
    await v.probeRound();
    const r = await v.scorePass({ submit: true, print: true });
    expect(r?.outcomes).to.deep.equal([]);
    return out;
  };

  it("commit-reveal: prints round 1000 and the ciphertext, which quicknet's pulse opens to the printed weights", async () => {
    const out = await dryPass("commit-reveal");
    const m = TIMELOCK_LINE.exec(out);
    expect(m, out).to.not.equal(null);
    const [, netuid, size, uids, values, round, version, uid, revealBlock, hex] = m as unknown as string[];
    // Validator uid 0; the miners registered in hotkey order, both probed fine: equal weights.
    expect([netuid, uids, values, round, version, uid, revealBlock]).to.deep.equal([
      "92",
      "1,2",
      "65535,65535",
      "1000",
      "4",
      "0",
      "10015",
    ]);
    const ciphertext = Buffer.from(hex as string, "hex");
    // 244 bytes of header, body framing and cipher suite around a 51-byte payload (33 + 5 + 5 + 8).
    expect(ciphertext.length).to.equal(Number(size)).and.equal(295);
    const payload = decodePayload(tlockDecrypt(ciphertext, SIG_1000));
    expect(Buffer.from(payload.hotkey).equals(Buffer.from(decodeAddress(validatorKey.address)))).to.equal(
      true,
    );
    expect(payload.uids).to.deep.equal([1, 2]);
    expect(payload.values).to.deep.equal([65_535, 65_535]);
    expect(payload.versionKey).to.equal(0n);
    // The score table shows the simulated uids.
    expect(out).to.match(/^\s*1\s+5MINER-A\s+yes\s+pass/m);
    expect(out).to.not.contain("no metagraph");
  });

  it("set-weights: prints the set_weights call and no commit", async () => {
    const out = await dryPass("set-weights");
    expect(out).to.contain(
      "weights: dry run, would set_weights(netuid 92, uids [1,2] values [65535,65535], version_key 0) as uid 0\n",
    );
    expect(out).to.not.match(/commit_timelocked_weights|ciphertext/);
  });

  describe("as `tensorclaw validator --once --dry-run --simulate-chain …`", () => {
    const cli = async (mode: string) => {
      const r = await runCli(
        [
          "validator",
          "--once",
          "--dry-run",
          "--simulate-chain",
          mode,
          "--router",
          router.url,
          "--state-file",
          join(dir, "cli-state.json"),
        ],
        { TENSORCLAW_MNEMONIC: mnemonicGenerate(), TENSORCLAW_LOG_LEVEL: "silent" },
      );
      return r;
    };

    it("commit-reveal: the round is the wall clock's reveal round and the printed ciphertext parses to that size", async () => {
      const before = Date.now();
      const r = await cli("commit-reveal");
      const after = Date.now();
      expect(r.code, r.stderr).to.equal(0);
      const m = TIMELOCK_LINE.exec(r.stdout);
      expect(m, r.stdout).to.not.equal(null);
      const [, , size, uids, , round, version, uid, , hex] = m as unknown as string[];
      expect([uids, version, uid]).to.deep.equal(["1,2", "4", "0"]);
      const ct = Buffer.from(hex as string, "hex");
      expect(ct.length).to.equal(Number(size));
      parseTlock(ct); // throws unless it is a well-formed TLECiphertext
      // The reveal epoch starts 1 to 361 blocks ahead, aimed 3 blocks in: 4 to 364 blocks of 12 s.
      const roundAt = (ms: number) => Math.floor((ms - QUICKNET.genesisTimeSec * 1000) / 3000);
      expect(Number(round)).to.be.within(roundAt(before + 4 * 12_000), roundAt(after + 364 * 12_000));
    });

    it("set-weights: prints the set_weights line", async () => {
      const r = await cli("set-weights");
      expect(r.code, r.stderr).to.equal(0);
      expect(r.stdout).to.match(
        /weights: dry run, would set_weights\(netuid 92, uids \[1,2\] values \[65535,65535\], version_key 0\) as uid 0\n/,
      );
    });

    it("is refused without --dry-run, naming the setting", async () => {
      const r = await runCli(["validator", "--simulate-chain", "commit-reveal", "--router", router.url], {
        TENSORCLAW_MNEMONIC: mnemonicGenerate(),
        TENSORCLAW_LOG_LEVEL: "silent",
      });
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.match(/--simulate-chain: needs --dry-run/);
    });
  });
});
