/**
 * Timelocked weight commit benchmark (npm run bench:tlock [-- --quick] [-- --json out.json]).
 *
 * Builds a full commit for 256 uids the way the validator does at a weights
 * step (SCALE payload, reveal round, BF-IBE to a drand quicknet round on
 * BLS12-381, AES-256-GCM body, tle serialisation): median over many runs
 * after a warm-up; target ≤ 50 ms. Baseline in the same run: the pairing
 * alone (the step that dominates), to tell a slow machine from slow code.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { bls12_381 } from "@noble/curves/bls12-381.js";
import type { Metagraph } from "../common/chain/chain.js";
import { quicknetPublicKey } from "../validator/tlock-cipher.js";
import { buildTlockCommit } from "../validator/tlock-commit.js";
import { identityPoint } from "../validator/tlock-ibe.js";
import { QUICKNET, roundMessage } from "../validator/tlock-quicknet.js";

const QUICK = process.argv.includes("--quick");
const jsonAt = process.argv.indexOf("--json");
const JSON_OUT = jsonAt === -1 ? undefined : process.argv[jsonAt + 1];
const UIDS = 256;
const RUNS = QUICK ? 5 : 40;
const TARGET_MS = 50;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function timeRuns(runs: number, f: (i: number) => void): number[] {
  f(-1); // warm-up: JIT and noble's cached precomputations
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    f(i);
    out.push(performance.now() - t);
  }
  return out;
}

const mg: Metagraph = {
  netuid: 92,
  block: 5_000_000,
  neurons: [],
  commitRevealEnabled: true,
  weightsSetRateLimit: 100,
  weightsVersionKey: 1_000n,
  tempo: 360,
  revealPeriodEpochs: 1,
  minAllowedWeights: 1,
  commitRevealVersion: 4,
  blockTimeMs: 12_000,
};
const weights = {
  uids: Array.from({ length: UIDS }, (_, i) => i),
  values: Array.from({ length: UIDS }, (_, i) => 1 + ((i * 7_919) % 65_535)),
};
const hotkey = "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY";
const start = Date.now();
let bytes = 0;
// Each run is a new commit: a new wall-clock second, so a new round and a new identity.
const commitMs = timeRuns(RUNS, (i) => {
  const c = buildTlockCommit(
    mg,
    hotkey,
    weights,
    start + (i + 1) * 3_000,
    (n) => new Uint8Array(randomBytes(n)),
  );
  bytes = c.ciphertext.length;
});
const id = identityPoint(roundMessage(5_000_000n), QUICKNET.hashToCurveDst);
const pairingMs = timeRuns(RUNS, () => bls12_381.pairingBatch([{ g1: id, g2: quicknetPublicKey() }]));

const rows: [string, number, string][] = [
  [`timelocked commit, ${UIDS} uids (${bytes}-byte ciphertext)`, median(commitMs), `≤ ${TARGET_MS} ms`],
  ["baseline: one pairing, same run", median(pairingMs), "-"],
];
console.log(`\ntimelock benchmark (${QUICK ? "quick" : "full"}: ${RUNS} runs each, medians)\n`);
for (const [name, ms, target] of rows)
  console.log(`${name.padEnd(56)}  ${ms.toFixed(2).padStart(8)} ms  ${target}`);
console.log("");
if (JSON_OUT !== undefined) {
  writeFileSync(
    JSON_OUT,
    `${JSON.stringify(
      {
        quick: QUICK,
        commit: {
          medianMs: median(commitMs),
          runs: RUNS,
          uids: UIDS,
          ciphertextBytes: bytes,
          targetMs: TARGET_MS,
        },
        pairing: { medianMs: median(pairingMs), runs: RUNS },
      },
      null,
      2,
    )}\n`,
  );
}
// A quick run is a smoke test of the script: its short timings are not judged.
if (!QUICK && median(commitMs) > TARGET_MS) process.exitCode = 1;
