// Web console benchmark: `npm run bench:console [-- --quick] [-- --json <file>]`.
//
// Against the router program in-process (embedded ledger, ports 0), in
// Debian's headless chromium driven by playwright-core:
//   1. page weight: bytes sent for `/` and everything it loads, gzipped as a
//      browser asks for them (issue 19: at most 200 KB);
//   2. time to first render of the Network page, cold (a fresh browser context:
//      nothing cached): first contentful paint, and the moment its figures from
//      /api/v1/network are drawn; and the same warm (a reload: the hashed assets
//      come from the cache);
//   3. the esbuild bundle built at router start-up, in this process.
// Each figure is the median (with p90 and min) of 10 runs (3 with --quick).
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Page } from "playwright-core";
import { silentLogger } from "../common/logger.js";
import { ROUTER_DEFAULTS } from "../router/config.js";
import { buildConsole } from "../router/console/console-assets.js";
import { startRouter } from "../router/router.js";

const QUICK = process.argv.includes("--quick");
const jsonAt = process.argv.indexOf("--json");
const JSON_OUT = jsonAt === -1 ? undefined : process.argv[jsonAt + 1];
const RUNS = QUICK ? 3 : 10;
const CHROMIUM = "/usr/bin/chromium";
const PAGE_BUDGET_BYTES = 200 * 1024;

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

/** Bytes the router sends for the page and its assets, as a browser that accepts gzip gets them. */
async function pageWeight(origin: string): Promise<number> {
  const headers = { "accept-encoding": "gzip, deflate, br" };
  const page = await fetch(`${origin}/`, { headers });
  const html = await page.text();
  let bytes = Number(page.headers.get("content-length"));
  for (const m of html.matchAll(/(?:src|href)="(\/console\/[^"]+)"/g)) {
    const r = await fetch(`${origin}${m[1]}`, { headers });
    await r.arrayBuffer();
    bytes += Number(r.headers.get("content-length"));
  }
  return bytes;
}

/** First contentful paint and the time the Network figures are drawn, ms since navigation start. */
async function render(page: Page): Promise<{ fcp: number; drawn: number }> {
  await page.locator(".stats .stat").first().waitFor({ state: "visible", timeout: 10_000 });
  const drawn = (await page.evaluate("performance.now()")) as number;
  // The paint entry is queued after the frame is presented: on a loaded machine, after the figures
  // are already visible to the locator.
  await page.waitForFunction("performance.getEntriesByName('first-contentful-paint').length > 0", undefined, {
    timeout: 10_000,
  });
  const fcp = (await page.evaluate(
    "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1",
  )) as number;
  if (fcp < 0) throw new Error("no first-contentful-paint entry");
  return { fcp, drawn };
}

async function main(): Promise<void> {
  const builds: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await buildConsole();
    builds.push(performance.now() - t);
  }
  const dir = await mkdtemp(join(tmpdir(), "tc-bench-console-"));
  const router = await startRouter(
    { ...ROUTER_DEFAULTS, httpPort: 0, grpcPort: 0, dataDir: dir, openCatalogue: true, logLevel: "warn" },
    silentLogger(),
  );
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
  try {
    const origin = `http://127.0.0.1:${router.httpPort}`;
    const bytes = await pageWeight(origin);
    const cold = { fcp: [] as number[], drawn: [] as number[] };
    const warm = { fcp: [] as number[], drawn: [] as number[] };
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext({ viewport: { width: 1366, height: 900 } });
      const page = await context.newPage();
      await page.goto(`${origin}/#/network`);
      const c = await render(page);
      cold.fcp.push(c.fcp);
      cold.drawn.push(c.drawn);
      await page.reload();
      const w = await render(page);
      warm.fcp.push(w.fcp);
      warm.drawn.push(w.drawn);
      await context.close();
    }
    const results = {
      runs: RUNS,
      pageWeight: { bytes, budgetBytes: PAGE_BUDGET_BYTES },
      cold: { firstContentfulPaint: spread(cold.fcp), figuresDrawn: spread(cold.drawn) },
      warm: { firstContentfulPaint: spread(warm.fcp), figuresDrawn: spread(warm.drawn) },
      build: spread(builds),
    };
    console.log(`page weight (gzipped, page + assets): ${bytes} B (budget ${PAGE_BUDGET_BYTES} B)`);
    for (const [name, s] of [
      ["cold: first contentful paint", results.cold.firstContentfulPaint],
      ["cold: network figures drawn", results.cold.figuresDrawn],
      ["warm: first contentful paint", results.warm.firstContentfulPaint],
      ["warm: network figures drawn", results.warm.figuresDrawn],
      ["esbuild bundle at start-up", results.build],
    ] as const) {
      console.log(
        `${name.padEnd(32)} median ${s.medianMs.toFixed(0)} ms  p90 ${s.p90Ms.toFixed(0)} ms  min ${s.minMs.toFixed(0)} ms`,
      );
    }
    if (JSON_OUT !== undefined) await writeFile(JSON_OUT, `${JSON.stringify(results, null, 2)}\n`);
  } finally {
    await browser.close();
    await router.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
