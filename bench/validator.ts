/**
 * Validator benchmark (npm run bench:validator [-- --quick] [-- --json out.json]).
 *
 *   1. Scoring + weight computation for 256 uids (100 probes and 3 models
 *      each): median over many runs; target ≤ 10 ms. Baseline in the same
 *      run: a structured clone of the same inputs (how fast this machine
 *      walks that much data right now).
 *   2. One probe round over 256 connected miners through a real gRPC server
 *      on port 0 implementing the generated Directory and Probe server
 *      interfaces (and checking every validator signature, like the router):
 *      half answer at once, half never answer. The server runs in its own
 *      process (as the router does), so its signature checks do not share
 *      the validator's event loop. Target: the round ends within
 *      the 8 s probe deadline + 1 s. Baseline in the same run: the same round
 *      when every miner answers at once.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { silentLogger } from "../common/logger.js";
import { throwawayHotkey } from "../test/support/keys.js";
import { okProbe, session, startRouterStandIn } from "../test/support/validator-router.js";
import { DEFAULT_LATENCY_TIERS } from "../validator/latency-tiers.js";
import { runProbeRound } from "../validator/probe-round.js";
import { PROBE_TIMEOUT_MS, RouterClient } from "../validator/router-client.js";
import { type MinerInput, scoreMiners } from "../validator/scoring.js";
import { computeWeights } from "../validator/weights.js";

/** `node --import` this to run TypeScript sources (see bin/loader.mjs). */
const TS_LOADER = new URL("../bin/register.mjs", import.meta.url).href;

const QUICK = process.argv.includes("--quick");
const jsonAt = process.argv.indexOf("--json");
const JSON_OUT = jsonAt === -1 ? undefined : process.argv[jsonAt + 1];
const MINERS = 256;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

/** A deterministic pseudo-random source, so every run scores the same inputs. */
function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1_664_525) + 1_013_904_223) >>> 0;
    return x / 2 ** 32;
  };
}

function inputs(): { miners: MinerInput[]; uids: Map<string, number> } {
  const rnd = lcg(92);
  const miners: MinerInput[] = [];
  const uids = new Map<string, number>();
  for (let i = 0; i < MINERS; i++) {
    const hotkey = `5Miner${String(i).padStart(4, "0")}`;
    uids.set(hotkey, i);
    miners.push({
      hotkey,
      available: rnd() > 0.1,
      probes: Array.from({ length: 100 }, (_, j) => ({
        atMs: 1_700_000_000_000 + j * 60_000,
        ok: rnd() > 0.05,
        latencyMs: rnd() * 3000,
        ttftMs: rnd() * 500,
      })),
      usage: ["small", "medium", "large"].map((model, k) => {
        const promptTokens = Math.floor(rnd() * 5_000_000);
        const completionTokens = Math.floor(rnd() * 1_000_000);
        // Most of it paid, the rest free (only the paid part earns).
        return {
          model,
          promptTokens,
          completionTokens,
          paidPromptTokens: Math.floor(promptTokens * 0.8),
          paidCompletionTokens: Math.floor(completionTokens * 0.8),
          tierMultiplier: k + 1,
          successRate: 1,
        };
      }),
    });
  }
  return { miners, uids };
}

function benchScoring(): { medianMs: number; baselineMs: number; runs: number } {
  const { miners, uids } = inputs();
  const runs = QUICK ? 50 : 500;
  const times: number[] = [];
  const base: number[] = [];
  // Warm up the JIT so the median measures steady state.
  for (let i = 0; i < 20; i++)
    computeWeights(
      scoreMiners(miners, DEFAULT_LATENCY_TIERS).map((s) => ({ hotkey: s.hotkey, score: s.final })),
      uids,
    );
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const scores = scoreMiners(miners, DEFAULT_LATENCY_TIERS);
    const w = computeWeights(
      scores.map((s) => ({ hotkey: s.hotkey, score: s.final })),
      uids,
    );
    times.push(performance.now() - t0);
    if (w.uids.length === 0) throw new Error("no weights computed");
    const b0 = performance.now();
    structuredClone(miners);
    base.push(performance.now() - b0);
  }
  return { medianMs: median(times), baselineMs: median(base), runs };
}

const SELF = fileURLToPath(import.meta.url);
const hotkeyOf = (i: number) => `5Miner${String(i).padStart(4, "0")}`;

/** Child role: the stand-in router; prints its URL, serves until stdin closes. */
async function serverRole(silentHalf: boolean): Promise<void> {
  const server = await startRouterStandIn({
    sessions: Array.from({ length: MINERS }, (_, i) => session(hotkeyOf(i))),
    probe: (req) => (silentHalf && Number(req.hotkey.slice(6)) % 2 === 1 ? "never" : okProbe(3)),
  });
  process.stdout.write(`${server.url}\n`);
  process.stdin.resume();
  await once(process.stdin, "end");
  await server.close();
}

async function benchRound(silentHalf: boolean): Promise<{ ms: number; passed: number; unanswered: number }> {
  const child = spawn(
    process.execPath,
    ["--import", TS_LOADER, SELF, "--role", "server", ...(silentHalf ? ["--silent-half"] : [])],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout });
  const [url] = (await once(lines, "line")) as [string];
  const signer = await throwawayHotkey();
  const client = new RouterClient([url], { signer, logger: silentLogger() });
  try {
    const t0 = performance.now();
    const round = await runProbeRound(client, {
      concurrency: 256,
      probe: (hotkey) =>
        client.probe(hotkey, {
          body: { messages: [{ role: "user", content: "Say hello." }] },
          cutAfterTokens: 5,
          timeoutMs: PROBE_TIMEOUT_MS,
        }),
      clock: Date.now,
      logger: silentLogger(),
    });
    const ms = performance.now() - t0;
    return {
      ms,
      passed: round.entries.filter((e) => e.record.ok).length,
      unanswered: round.routerErrors.length,
    };
  } finally {
    client.close();
    lines.close();
    child.stdin.end();
    await once(child, "exit");
  }
}

async function main(): Promise<void> {
  const scoring = benchScoring();
  const rounds = QUICK ? 1 : 3;
  const half: number[] = [];
  const all: number[] = [];
  let last = { passed: 0, unanswered: 0 };
  for (let i = 0; i < rounds; i++) {
    all.push((await benchRound(false)).ms);
    const r = await benchRound(true);
    half.push(r.ms);
    last = r;
  }
  const roundMs = median(half);
  const baseRoundMs = median(all);
  const rows = [
    [
      "scoring + weights, 256 uids",
      `${scoring.medianMs.toFixed(3)} ms`,
      "≤ 10 ms",
      `${scoring.baselineMs.toFixed(3)} ms (structuredClone of inputs)`,
      scoring.medianMs <= 10,
    ],
    [
      "probe round, 256 miners, half silent",
      `${roundMs.toFixed(0)} ms`,
      `≤ ${PROBE_TIMEOUT_MS + 1000} ms`,
      `${baseRoundMs.toFixed(0)} ms (all answer)`,
      roundMs <= PROBE_TIMEOUT_MS + 1000,
    ],
  ] as const;
  const widths = [38, 12, 12, 42];
  const fmt = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 8)).join("  ");
  console.log(
    `\nvalidator benchmark (${QUICK ? "quick" : "full"}: ${scoring.runs} scoring runs, ${rounds} round(s) each)\n`,
  );
  console.log(fmt(["measure", "median", "target", "baseline (same run)", "ok"]));
  for (const [name, got, target, baseline, ok] of rows)
    console.log(fmt([name, got, target, baseline, ok ? "yes" : "NO"]));
  console.log(
    `\nlast silent-half round: ${last.passed} passed, ${last.unanswered} unanswered (not scored)\n`,
  );
  if (JSON_OUT !== undefined) {
    writeFileSync(
      JSON_OUT,
      `${JSON.stringify(
        {
          quick: QUICK,
          scoring: {
            medianMs: scoring.medianMs,
            baselineMs: scoring.baselineMs,
            runs: scoring.runs,
            targetMs: 10,
          },
          probeRound: {
            medianMs: roundMs,
            baselineMs: baseRoundMs,
            rounds,
            targetMs: PROBE_TIMEOUT_MS + 1000,
          },
        },
        null,
        2,
      )}\n`,
    );
  }
  // A quick run is a smoke test of the script: its short timings are not judged.
  if (!QUICK && rows.some((r) => !r[4])) process.exitCode = 1;
}

if (process.argv.includes("--role")) await serverRole(process.argv.includes("--silent-half"));
else await main();
