// CLI start-up benchmark: `npm run bench:startup [-- --quick] [-- --json <file>]`.
//
// Wall time from spawning `node bin/tensorclaw.js …` to:
//   1. its exit, for `tensorclaw --help` and `tensorclaw <command> --help` of
//      every command (and `router tiers`): target ≤ 300 ms;
//   2. `tensorclaw router` (embedded ledger, ports 0) answering GET /healthz
//      with 200, right after its start line: target ≤ 1,000 ms. The router's
//      own CPU time (user + system, all threads) until then is reported beside it.
// Each figure is the median (with p90 and min) of 10 runs, the commands taking
// turns so that a change in the machine's load spreads over all of them. The
// compiled-TypeScript cache (bin/loader.mjs) is warm: the runs use a folder of
// their own (TENSORCLAW_TS_CACHE), filled by a first run of each command. For
// information, the same folder emptied before each run gives the cold figures
// of `--help` and of the router (everything compiled by esbuild). Baseline in
// the same run: `node -e 0`, a Node process that does nothing.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../bin/tensorclaw.js", import.meta.url));
const QUICK = process.argv.includes("--quick");
const jsonAt = process.argv.indexOf("--json");
const JSON_OUT = jsonAt === -1 ? undefined : process.argv[jsonAt + 1];
const RUNS = QUICK ? 3 : 10;
const COLD_RUNS = QUICK ? 1 : 3;
const HELP_TARGET_MS = 300;
const SERVE_TARGET_MS = 1000;
const SERVE_TIMEOUT_MS = 30_000;

/** The `--help` cases: JSON key and the words before `--help`. */
const HELP_CASES: readonly (readonly [string, readonly string[]])[] = [
  ["top", []],
  ["router", ["router"]],
  ["routerTiers", ["router", "tiers"]],
  ["miner", ["miner"]],
  ["validator", ["validator"]],
  ["dev", ["dev"]],
  ["keys", ["keys"]],
];

/** Median, 90th percentile (nearest rank) and minimum. */
interface Spread {
  readonly medianMs: number;
  readonly p90Ms: number;
  readonly minMs: number;
}

function spread(xs: readonly number[]): Spread {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  const median = s.length % 2 ? (s[m] ?? 0) : ((s[m - 1] ?? 0) + (s[m] ?? 0)) / 2;
  return { medianMs: median, p90Ms: s[Math.ceil(0.9 * s.length) - 1] ?? 0, minMs: s[0] ?? 0 };
}

/** Milliseconds from spawning `node <args>` to its exit; throws unless it exits 0. */
async function timeToExit(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  const ms = performance.now() - t0;
  if (code !== 0) throw new Error(`node ${args.join(" ")} exited with ${code}: ${stderr.slice(-500)}`);
  return ms;
}

/** User + system CPU time of a live process (all its threads), from /proc. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // utime and stime are fields 14 and 15 of stat, in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, "exit");
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * Starts `tensorclaw router` on ports 0 with a fresh data folder and returns
 * the milliseconds until GET /healthz answers 200 (asked as soon as the start
 * line names the port), and the router's CPU time until then.
 */
async function timeToServe(env: NodeJS.ProcessEnv, scratch: string): Promise<{ ms: number; cpuMs: number }> {
  const dataDir = await mkdtemp(join(scratch, "router-"));
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [CLI, "router", "--http-port", "0", "--grpc-port", "0", "--data-dir", dataDir],
    { env, stdio: ["ignore", "ignore", "pipe"] },
  );
  try {
    let stderr = "";
    const port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the router did not start in time")), SERVE_TIMEOUT_MS);
      child.stderr?.on("data", (d: Buffer) => {
        stderr += d.toString();
        const m = /API on http:\/\/[^:]+:(\d+)\/v1/.exec(stderr);
        if (m !== null) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`the router exited with ${code} before serving: ${stderr.slice(-500)}`));
      });
    });
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    await res.arrayBuffer();
    const ms = performance.now() - t0;
    if (res.status !== 200) throw new Error(`GET /healthz answered ${res.status}`);
    return { ms, cpuMs: await cpuMs(child.pid ?? 0) };
  } finally {
    await stop(child);
    await rm(dataDir, { recursive: true, force: true });
  }
}

const helpArgs = (words: readonly string[]) => [CLI, ...words, "--help"];

async function main(): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), "tensorclaw-bench-startup-"));
  const cache = join(scratch, "ts-cache");
  const env = { ...process.env, TENSORCLAW_TS_CACHE: cache };
  try {
    // Cold: nothing compiled yet, esbuild does every file.
    const coldHelp: number[] = [];
    const coldServe: number[] = [];
    for (let i = 0; i < COLD_RUNS; i++) {
      await rm(cache, { recursive: true, force: true });
      coldHelp.push(await timeToExit(helpArgs([]), env));
      await rm(cache, { recursive: true, force: true });
      coldServe.push((await timeToServe(env, scratch)).ms);
    }

    // Warm: one unmeasured run of each fills the cache (and the OS file cache).
    for (const [, words] of HELP_CASES) await timeToExit(helpArgs(words), env);
    await timeToServe(env, scratch);
    const help = new Map<string, number[]>(HELP_CASES.map(([key]) => [key, []]));
    const serve: number[] = [];
    const serveCpu: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      bare.push(await timeToExit(["-e", "0"], env));
      for (const [key, words] of HELP_CASES) help.get(key)?.push(await timeToExit(helpArgs(words), env));
      const s = await timeToServe(env, scratch);
      serve.push(s.ms);
      serveCpu.push(s.cpuMs);
    }

    const results = {
      quick: QUICK,
      runs: RUNS,
      help: Object.fromEntries([...help].map(([key, xs]) => [key, spread(xs)])),
      routerServing: { ...spread(serve), cpuMedianMs: spread(serveCpu).medianMs },
      cold: {
        helpMs: spread(coldHelp).medianMs,
        routerServingMs: spread(coldServe).medianMs,
        runs: COLD_RUNS,
      },
      bareNode: spread(bare),
      targets: { helpMs: HELP_TARGET_MS, routerServingMs: SERVE_TARGET_MS },
    };

    const rows: [string, Spread, number | undefined][] = [
      ...HELP_CASES.map(
        ([key, words]) =>
          [`tensorclaw ${[...words, "--help"].join(" ")}`, results.help[key] as Spread, HELP_TARGET_MS] as [
            string,
            Spread,
            number,
          ],
      ),
      ["tensorclaw router, until /healthz answers", results.routerServing, SERVE_TARGET_MS],
      ["node -e 0 (baseline)", results.bareNode, undefined],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(
      `\nCLI start-up benchmark${QUICK ? " (quick)" : ""}: ${RUNS} runs each, warm compile cache\n`,
    );
    console.log(
      `${"".padEnd(w)}  ${"median".padStart(7)}  ${"p90".padStart(7)}  ${"min".padStart(7)}  target`,
    );
    for (const [name, s, target] of rows) {
      const cells = [s.medianMs, s.p90Ms, s.minMs].map((v) => `${v.toFixed(0)} ms`.padStart(7));
      const verdict = target === undefined ? "" : `≤ ${target} ms ${s.medianMs <= target ? "ok" : "MISSED"}`;
      console.log(`${name.padEnd(w)}  ${cells.join("  ")}  ${verdict}`);
    }
    console.log(
      `\nrouter CPU until serving: ${results.routerServing.cpuMedianMs.toFixed(0)} ms (median)` +
        `\ncold cache (emptied before each run, median of ${COLD_RUNS}): --help ${results.cold.helpMs.toFixed(0)} ms,` +
        ` router serving ${results.cold.routerServingMs.toFixed(0)} ms\n`,
    );
    if (JSON_OUT !== undefined) await writeFile(JSON_OUT, `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}

await main();
