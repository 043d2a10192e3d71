import { expect } from "chai";
import OpenAI from "openai";
import { CONSOLE_CSP } from "../../router/console/console-routes.js";
import type { MinerBody, ModelStatsBody, NetworkBody } from "../../router/console/console-types.js";
import {
  type ConsoleNetwork,
  MARKUP_MODEL,
  PRICE_COMPLETION,
  PRICE_PROMPT,
  PRICED_MODEL,
  startConsoleNetwork,
} from "../support/console-network.js";
import { pollUntil } from "../support/poll.js";

/** The budget for one page and everything it loads, as sent. */
const PAGE_BUDGET_BYTES = 200 * 1024;

async function getJson<T>(url: string): Promise<{ status: number; body: T; headers: Headers }> {
  const r = await fetch(url);
  return { status: r.status, body: (await r.json()) as T, headers: r.headers };
}

/**
 * The console's HTTP side, without a browser: headers, page weight, the
 * public endpoints' shapes and errors, `--no-console`, and a hostile miner's
 * usage claim shown bounded (the console shows the ledger's credit, never
 * what the miner said).
 */
describe("web console over HTTP", function () {
  this.timeout(30_000);

  describe("with the console on", () => {
    let net: ConsoleNetwork;
    before(async () => {
      // The priced miner claims a million tokens each way for a five-chunk answer.
      net = await startConsoleNetwork({
        plan: () => ({ chunks: ["a", "b", "c", "d", "e"], end: { usage: [1_000_000, 1_000_000] } }),
      });
    });
    after(async () => net?.close());

    it("serves the page and its assets under a strict CSP, gzipped within the page budget", async () => {
      const page = await fetch(`${net.origin}/`, { headers: { "accept-encoding": "gzip" } });
      expect(page.status).to.equal(200);
      expect(page.headers.get("content-type")).to.equal("text/html; charset=utf-8");
      expect(page.headers.get("content-security-policy")).to.equal(CONSOLE_CSP);
      expect(CONSOLE_CSP).to.match(/^default-src 'self'; script-src 'self';/);
      expect(CONSOLE_CSP).to.not.contain("unsafe");
      expect(page.headers.get("x-content-type-options")).to.equal("nosniff");
      expect(page.headers.get("referrer-policy")).to.equal("no-referrer");
      expect(page.headers.get("cache-control")).to.equal("no-cache");
      const html = await page.text();
      expect(html).to.not.match(/<script(?![^>]*\bsrc=)/, "no inline script");
      expect(html).to.not.contain("style=");
      const refs = [...html.matchAll(/(?:src|href)="(\/console\/[^"]+)"/g)].map((m) => m[1] as string);
      expect(refs).to.have.length(3);
      // What travels on the wire: fetch undoes gzip, but content-length is what was sent.
      let sent = Number(page.headers.get("content-length"));
      for (const ref of refs) {
        const raw = await fetch(`${net.origin}${ref}`, { headers: { "accept-encoding": "gzip" } });
        expect(raw.status, ref).to.equal(200);
        expect(raw.headers.get("content-encoding"), ref).to.equal("gzip");
        expect(raw.headers.get("x-content-type-options"), ref).to.equal("nosniff");
        expect(raw.headers.get("cache-control"), ref).to.contain("immutable");
        sent += Number(raw.headers.get("content-length"));
        expect((await raw.arrayBuffer()).byteLength, ref).to.be.above(0);
      }
      expect(sent).to.be.above(1000).and.below(PAGE_BUDGET_BYTES);
      // Without gzip the same bytes come plain.
      const plain = await fetch(`${net.origin}${refs.find((r) => r.endsWith(".js"))}`, {
        headers: { "accept-encoding": "identity" },
      });
      expect(plain.headers.get("content-encoding")).to.equal(null);
    });

    it("answers unknown console files 404 and other methods 405, as OpenAI error bodies", async () => {
      const missing = await getJson<{ error: { code: string } }>(`${net.origin}/console/app.nothing.js`);
      expect(missing.status).to.equal(404);
      expect(missing.body.error).to.have.property("message");
      const post = await fetch(`${net.origin}/`, { method: "POST", body: "{}" });
      expect(post.status).to.equal(405);
      expect(post.headers.get("allow")).to.equal("GET, HEAD");
    });

    it("/api/v1/network lists models with prices and context, and miners by state, without session ids", async () => {
      const { status, body, headers } = await getJson<NetworkBody>(`${net.origin}/api/v1/network`);
      expect(status).to.equal(200);
      expect(headers.get("cache-control")).to.equal("no-store");
      const priced = body.models.find((m) => m.id === PRICED_MODEL);
      expect(priced).to.deep.include({
        context_length: 8192,
        price_per_million: { prompt: PRICE_PROMPT, completion: PRICE_COMPLETION },
        miners: 1,
      });
      expect(body.models.find((m) => m.id === MARKUP_MODEL)?.miners).to.equal(1);
      expect(body.miner_counts).to.deep.equal({ active: 2, ghost: 0, draining: 0, banned: 0 });
      expect(body.miners.map((m) => m.hotkey).sort()).to.deep.equal(
        [net.priced.hotkey.address, net.markup.hotkey.address].sort(),
      );
      expect(JSON.stringify(body)).to.not.match(/session/i);
    });

    it("shows a miner's traffic as the ledger credited it, not the million tokens it claimed", async () => {
      const client = new OpenAI({ apiKey: net.apiKey, baseURL: `${net.origin}/v1`, maxRetries: 0 });
      const r = await client.chat.completions.create({
        model: PRICED_MODEL,
        messages: [{ role: "user", content: "Five letters, please." }],
      });
      expect(r.choices[0]?.message.content).to.equal("abcde");
      const hotkey = net.priced.hotkey.address;
      // Usage reaches the ledger in the recorder's next batch, and the console reuses a read for a few seconds.
      const miner = await pollUntil(
        async () => {
          const { body } = await getJson<MinerBody>(`${net.origin}/api/v1/miners/${hotkey}`);
          return body.traffic_24h.requests > 0 ? body : undefined;
        },
        { what: "the chat in the miner's traffic", timeoutMs: 15_000 },
      );
      expect(miner.traffic_24h.completion_tokens).to.be.above(0).and.at.most(5);
      expect(miner.traffic_24h.prompt_tokens).to.be.above(0).and.below(100);
      expect(miner.traffic_24h.success_rate).to.equal(1);
      expect(miner.state).to.equal("active");
      expect(miner.tunnels).to.have.length(1);
      expect(miner.tunnels[0]).to.include({ transport: "grpc", state: "active" });
      expect(miner.models.map((m) => m.model)).to.deep.equal([PRICED_MODEL]);
      expect(miner.models[0]).to.include({ breaker: "closed", audit_failed: false });
      expect(miner.series).to.have.length(24);
      expect(miner.series.reduce((s, p) => s + p.tokens, 0)).to.equal(
        miner.traffic_24h.prompt_tokens + miner.traffic_24h.completion_tokens,
      );

      const stats = await getJson<ModelStatsBody>(
        `${net.origin}/api/v1/models/${encodeURIComponent(PRICED_MODEL)}/stats`,
      );
      expect(stats.status).to.equal(200);
      expect(stats.body.traffic_24h).to.deep.equal(miner.traffic_24h);
      expect(stats.body.miners.map((m) => m.hotkey)).to.deep.equal([hotkey]);
      expect(stats.body.ttft_p50_ms).to.be.a("number");
    });

    it("answers unknown models and hotkeys 404 with an OpenAI error body", async () => {
      const model = await getJson<{ error: { code: string } }>(
        `${net.origin}/api/v1/models/${encodeURIComponent("no-such-model")}/stats`,
      );
      // An open catalogue routes any id, but one nobody offers and nothing was served for is unknown.
      expect(model.status).to.equal(404);
      expect(model.body.error.code).to.equal("model_not_found");
      const badEscape = await fetch(`${net.origin}/api/v1/models/%E0%A4%A/stats`);
      expect(badEscape.status).to.equal(404);
      const miner = await getJson<{ error: { message: string } }>(`${net.origin}/api/v1/miners/5Nobody`);
      expect(miner.status).to.equal(404);
      expect(miner.body.error.message).to.contain("5Nobody");
      // A key's activity wants the key.
      const activity = await getJson<{ error: { code: string } }>(`${net.origin}/api/v1/key/activity`);
      expect(activity.status).to.equal(401);
      // The OpenAI route of the same prefix is untouched.
      const list = await fetch(`${net.origin}/v1/models`, {
        headers: { authorization: `Bearer ${net.apiKey}` },
      });
      expect(list.status).to.equal(200);
    });
  });

  describe("with --no-console", () => {
    let net: ConsoleNetwork;
    before(async () => {
      net = await startConsoleNetwork({ router: { noConsole: true } });
    });
    after(async () => net?.close());

    it("serves no page and none of the console's endpoints; the API works", async () => {
      for (const path of ["/", "/api/v1/network", `/api/v1/miners/${net.priced.hotkey.address}`]) {
        const r = await fetch(`${net.origin}${path}`);
        expect(r.status, path).to.equal(404);
        expect(r.headers.get("content-type"), path).to.equal("application/json");
      }
      const list = await fetch(`${net.origin}/v1/models`, {
        headers: { authorization: `Bearer ${net.apiKey}` },
      });
      expect(list.status).to.equal(200);
    });
  });
});
