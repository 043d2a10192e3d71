import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "chai";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { usd } from "../../router/console/web/format.js";
import {
  ANSWER_CHUNKS,
  type ConsoleNetwork,
  MARKUP_MODEL,
  PRICED_MODEL,
  startConsoleNetwork,
} from "../support/console-network.js";
import { throwawayHotkey } from "../support/keys.js";
import { pollUntil } from "../support/poll.js";
import { RawTunnelClient } from "../support/raw-tunnel-client.js";

/** Debian's chromium (`.ci/run` installs it). */
const CHROMIUM = "/usr/bin/chromium";
/** Screenshots of each page at each width (gitignored). */
const ARTIFACTS = join(process.cwd(), "test-artifacts", "console");
const WIDTHS = { phone: { width: 390, height: 844 }, laptop: { width: 1366, height: 900 } } as const;

/**
 * The web console in headless Chromium against a real router with real
 * tunnels: every page loads without a console error (a CSP violation is
 * one), the Network page lists the models and miners, a Playground chat
 * streams and prices its answer, the Account page shows what it cost, a
 * miner's page shows its traffic, and a model id that is markup stays text.
 */
describe("web console in a real browser", function () {
  this.timeout(60_000);
  let net: ConsoleNetwork;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const problems: string[] = [];
  /** Console lines a test expects (Chromium logs every error answer of a fetch as an error). */
  const expected: RegExp[] = [];

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    net = await startConsoleNetwork();
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true });
    context = await browser.newContext({ viewport: WIDTHS.laptop });
    page = await context.newPage();
    page.on("console", (m) => {
      if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
    });
    page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
    page.on("requestfailed", (r) => problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  });
  after(async () => {
    await browser?.close();
    await net?.close();
  });
  afterEach(function () {
    // Aborted polls of a page left behind are not failures; anything else is.
    const real = problems.filter((p) => !p.includes("net::ERR_ABORTED") && !expected.some((e) => e.test(p)));
    problems.length = 0;
    expected.length = 0;
    if (this.currentTest?.state === "passed") expect(real, "browser console").to.deep.equal([]);
  });

  /** Opens a route and waits for `ready` to be visible. */
  async function open(route: string, ready: string): Promise<void> {
    await page.goto(`${net.origin}/#${route}`);
    await page.locator(ready).first().waitFor({ state: "visible", timeout: 10_000 });
  }

  async function screenshots(name: string, ready: string): Promise<void> {
    for (const [width, size] of Object.entries(WIDTHS)) {
      await page.setViewportSize(size);
      await page.locator(ready).first().waitFor({ state: "visible" });
      await page.screenshot({ path: join(ARTIFACTS, `${name}-${width}.png`), fullPage: true });
    }
    // The laptop width again in the dark scheme (the console follows the system setting).
    await page.emulateMedia({ colorScheme: "dark" });
    await page.setViewportSize(WIDTHS.laptop);
    await page.screenshot({ path: join(ARTIFACTS, `${name}-laptop-dark.png`), fullPage: true });
    await page.emulateMedia({ colorScheme: "light" });
  }

  it("Network lists the models with their prices and the miners, and a markup model id stays text", async () => {
    await open("/network", "table");
    const models = page.locator("table", { has: page.locator("caption", { hasText: "Models" }) });
    await models.locator("a", { hasText: PRICED_MODEL }).waitFor();
    const pricedRow = models.locator("tr", { has: page.locator("a", { hasText: PRICED_MODEL }) });
    expect(await pricedRow.textContent()).to.match(/\$5\.00\/M\s*\$20\.00\/M/);
    // The markup id is shown as its own characters, and no element was made of it.
    const markupLink = models.locator("a", { hasText: MARKUP_MODEL });
    expect(await markupLink.textContent()).to.equal(MARKUP_MODEL);
    expect(await page.locator("img").count()).to.equal(0);
    expect(await page.evaluate("typeof window.__consoleXss")).to.equal("undefined");
    const miners = page.locator("table", { has: page.locator("caption", { hasText: "Miners" }) });
    for (const hk of [net.priced.hotkey.address, net.markup.hotkey.address]) {
      expect(await miners.locator(`a[title="${hk}"]`).count(), hk).to.equal(1);
    }
    expect(
      await page.locator(".stat", { hasText: "Active miners" }).locator(".stat-value").textContent(),
    ).to.equal("2");
    await screenshots("network", "table");
    // The markup model's own page renders its id as the heading's text.
    await markupLink.click();
    await page.locator("h1", { hasText: MARKUP_MODEL }).waitFor();
    await page.locator("table", { has: page.locator("caption", { hasText: "Miners serving it" }) }).waitFor();
    expect(await page.locator("img").count()).to.equal(0);
  });

  it("Network updates live: a miner that connects after the page loaded appears without a reload", async () => {
    await open("/network", "table");
    const hotkey = await throwawayHotkey();
    const tunnel = await RawTunnelClient.open("grpc", { grpc: `127.0.0.1:${net.router.grpcPort}`, ws: "" });
    try {
      const verdict = await tunnel.handshake(hotkey, {
        models: [{ id: "late-model", maxConcurrency: 1, contextLength: 0, kinds: [] }],
      });
      expect(verdict.accept, verdict.reject?.message).to.not.equal(undefined);
      // The page polls every few seconds; the bound only stops a page that never refreshes.
      await page.locator(`a[title="${hotkey.address}"]`).waitFor({ timeout: 15_000 });
      await page.locator("a", { hasText: "late-model" }).waitFor();
    } finally {
      tunnel.destroy();
    }
  });

  it("Playground streams an answer with its cost; Account shows that spend; the miner's page its traffic", async () => {
    await open("/account", "#acct-key");
    await page.fill("#acct-key", net.apiKey);
    await page.click("text=Use this key");
    await page.locator(".stat", { hasText: "Balance" }).waitFor();
    expect(await page.locator(".stat", { hasText: "Balance" }).textContent()).to.contain("$1.00");
    // The key is in this tab's session storage, not in the address.
    expect(page.url()).to.not.contain(net.apiKey);

    await open("/playground", "#pg-model:has(option)");
    await page.selectOption("#pg-model", PRICED_MODEL);
    await page.fill("#pg-system", "Answer briefly.");
    await page.fill("#pg-prompt", "Say hello");
    await page.click("text=Send");
    const meta = page.locator(".msg.assistant .meta", { hasText: "cost" });
    await meta.waitFor({ timeout: 10_000 });
    expect(await page.locator(".msg.assistant .text").textContent()).to.equal(ANSWER_CHUNKS.join(""));
    expect(await meta.textContent()).to.match(/TTFT \d+ ms · .*tokens\/s · \d+ \+ 5 tokens · cost \$0\.0\d+/);
    const sent = net.priced.miner.requests.at(-1);
    expect(sent?.chat?.messages.map((m) => m.role)).to.deep.equal(["system", "user"]);
    await screenshots("playground", ".msg.assistant .meta");

    // Settling is asynchronous (the usage recorder batches): wait until the router reports the spend.
    const spent = await pollUntil(
      async () => {
        const r = await fetch(`${net.origin}/api/v1/key`, {
          headers: { authorization: `Bearer ${net.apiKey}` },
        });
        const { data } = (await r.json()) as { data: { usage: number } };
        return data.usage > 0 ? data.usage : undefined;
      },
      { what: "the chat's charge", timeoutMs: 10_000 },
    );
    await open("/account", ".stat");
    expect(await page.locator(".stat", { hasText: "Spent in all" }).textContent()).to.contain(usd(spent));
    // The key's recent generations, read from the router (/api/v1/key/generations): the Playground's
    // request, its model, cost and finish reason.
    const generations = page.locator("table", {
      has: page.locator("caption", { hasText: "Recent generations" }),
    });
    await generations.waitFor();
    const rows = generations.locator("tbody tr");
    expect(await rows.count()).to.equal(1);
    expect(await rows.first().textContent())
      .to.contain(PRICED_MODEL)
      .and.contain(usd(spent))
      .and.contain("+ 5")
      .and.contain("stop");
    // Spend per model over 30 days (from /api/v1/key/activity), with the day chart beside it.
    const perModel = page.locator("table", { has: page.locator("caption", { hasText: "Spend per model" }) });
    expect(await perModel.textContent())
      .to.contain(PRICED_MODEL)
      .and.contain(usd(spent));
    expect(await page.locator("svg.chart rect.bar").count()).to.equal(30);
    await screenshots("account", ".stat");

    // A request this tab never made (sent with curl's equivalent) is listed too, newest first, and
    // its model id, markup, is shown as text.
    const other = await fetch(`${net.origin}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${net.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({ model: MARKUP_MODEL, messages: [{ role: "user", content: "hi" }] }),
    });
    expect(other.status).to.equal(200);
    const otherId = other.headers.get("x-request-id");
    await other.json();
    await pollUntil(
      async () => {
        const r = await fetch(`${net.origin}/api/v1/key/generations`, {
          headers: { authorization: `Bearer ${net.apiKey}` },
        });
        const { data } = (await r.json()) as { data: { id: string }[] };
        return data[0]?.id === otherId ? true : undefined;
      },
      { what: "the second request's record", timeoutMs: 10_000 },
    );
    // Reloaded: the same #/account route is no navigation.
    await page.reload();
    await generations.waitFor();
    expect(await rows.count()).to.equal(2);
    expect(await rows.first().locator("td").nth(1).textContent()).to.equal(MARKUP_MODEL);
    expect(await rows.nth(1).textContent()).to.contain(PRICED_MODEL);
    expect(await page.locator("img").count()).to.equal(0);
    expect(await page.evaluate("typeof window.__consoleXss")).to.equal("undefined");

    // The ledger read behind the pages is reused for a few seconds: wait for one that has the chat.
    const hotkey = net.priced.hotkey.address;
    await pollUntil(
      async () => {
        const r = await fetch(`${net.origin}/api/v1/miners/${hotkey}`);
        const body = (await r.json()) as { traffic_24h: { completion_tokens: number } };
        return body.traffic_24h.completion_tokens > 0;
      },
      { what: "the miner's traffic in the ledger", timeoutMs: 10_000 },
    );
    await open(`/miners/${hotkey}`, ".stat");
    const tokens = (await page.locator(".stat", { hasText: "Tokens 24 h" }).textContent()) ?? "";
    expect(Number(/(\d+)\s*$/.exec(tokens)?.[1])).to.be.above(0);
    expect(await page.locator(".stat", { hasText: "User success" }).textContent()).to.contain("100 %");
    expect(await page.locator("svg.chart rect.bar").count()).to.equal(24);
    await screenshots("miner", ".stat");
  });

  it("the Stop button cancels a streaming answer at the miner", async () => {
    await open("/playground", "#pg-model:has(option)");
    await page.selectOption("#pg-model", MARKUP_MODEL);
    const before = net.markup.miner.cancels.length;
    // The markup miner answers a "hang" prompt with one chunk and then nothing.
    await page.fill("#pg-prompt", "please hang");
    await page.click("text=Send");
    await page.locator(".msg.assistant .text", { hasText: "partial" }).waitFor();
    const stop = page.locator("button", { hasText: "Stop" });
    await stop.click();
    await page.locator(".msg.assistant .meta", { hasText: "Stopped" }).waitFor();
    expect(await stop.isDisabled()).to.equal(true);
    await net.markup.miner.until(() => net.markup.miner.cancels.length > before);
  });

  it("a miner's error text is shown as text in the Playground", async () => {
    await open("/playground", "#pg-model:has(option)");
    await page.selectOption("#pg-model", MARKUP_MODEL);
    expected.push(/status of 400 \(Bad Request\)/);
    await page.fill("#pg-prompt", "please fail");
    await page.click("text=Send");
    const error = page.locator(".msg.assistant .note.error");
    await error.waitFor();
    expect(await error.textContent()).to.contain("<img/src/onerror=");
    expect(await page.locator("img").count()).to.equal(0);
    expect(await page.evaluate("typeof window.__consoleXss")).to.equal("undefined");
  });

  it("Docs shows this router's real base URL; every page passes the browser's checks", async () => {
    await open("/docs", "pre");
    const code = await page.locator("pre").first().textContent();
    expect(code).to.contain(`${net.origin}/v1/chat/completions`);
    expect(code).to.not.contain(net.apiKey);
    await screenshots("docs", "pre");
    await open(`/models/${encodeURIComponent(PRICED_MODEL)}`, ".stat");
    await screenshots("model", ".stat");
  });
});
