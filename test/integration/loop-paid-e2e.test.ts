// Self-dealing in the whole loop, with real processes: a router that counts
// paid traffic only (no --count-free-traffic), two miners on priced models,
// a dry-run validator. Miner S holds an unmetered (free) key and sends itself
// traffic on a model only it serves; a paying user's metered key sends
// traffic to miner P. Only P's business counts, and the paying key is
// charged exactly what its generation records say.
import { expect } from "chai";
import OpenAI from "openai";
import { costMicros, MICROS_PER_USD } from "../../router/billing/money.js";
import { runCli } from "../support/cli.js";
import { type LoopMiner, type LoopNetwork, startLoopNetwork } from "../support/loop-network.js";
import { lastPrintedTable, type PrintedScore } from "../support/loop-score-table.js";
import { pollUntil } from "../support/poll.js";

const PRICE = { prompt: 2, completion: 6 };
const REQUESTS = 6;

describe("only paid traffic earns, in the whole loop (real processes)", function () {
  this.timeout(90_000);
  let net: LoopNetwork;
  let paidKey: string;
  const miner = (name: string) => net.miners.find((m) => m.name === name) as LoopMiner;
  const client = (apiKey: string) =>
    new OpenAI({ baseURL: `http://127.0.0.1:${net.httpPort}/v1`, apiKey, maxRetries: 0, timeout: 15_000 });

  before(async () => {
    net = await startLoopNetwork({
      miners: [
        { name: "S", model: "m-self", transport: "grpc" },
        { name: "P", model: "m-paid", transport: "grpc" },
      ],
      countFreeTraffic: false,
      prices: { "m-self": PRICE, "m-paid": PRICE },
    });
    const created = await runCli(["keys", "create", "--name", "buyer", "--credits", "5", "--json"], {
      REDIS_URL: net.redis.url,
    });
    expect(created.code, created.stderr).to.equal(0);
    paidKey = (JSON.parse(created.stdout) as { key: string }).key;
    await pollUntil(async () => ((await net.activeHotkeys()).size === 2 ? true : undefined), {
      what: "two active miners",
      timeoutMs: 30_000,
      intervalMs: 100,
    });
  });
  after(async () => {
    await net?.close();
  });

  it("gives a miner's self-sent free traffic no business, and counts and charges a paying key's", async () => {
    const selfDealer = client(net.apiKey);
    const buyer = client(paidKey);
    const bought: { id: string; prompt: number; completion: number }[] = [];
    for (let i = 0; i < REQUESTS; i++) {
      const messages = [{ role: "user" as const, content: `request ${i} [[backend tokens=${4 + i}]]` }];
      await selfDealer.chat.completions.create({ model: "m-self", messages });
      const { data, response } = await buyer.chat.completions
        .create({ model: "m-paid", messages })
        .withResponse();
      bought.push({
        id: response.headers.get("x-request-id") ?? "",
        prompt: data.usage?.prompt_tokens ?? 0,
        completion: data.usage?.completion_tokens ?? 0,
      });
    }
    const paidTokens = bought.reduce((s, b) => s + b.prompt + b.completion, 0);

    // The ledger sees both miners' traffic, and tells paid from free.
    const usage = await pollUntil(
      async () => {
        const u = await net.client.getUsage(0);
        const row = (m: LoopMiner) => u.miners.find((x) => x.hotkey === m.hotkey);
        const total = (m: LoopMiner) =>
          Number(row(m)?.promptTokens ?? 0) + Number(row(m)?.completionTokens ?? 0);
        // Wait on P's paid tokens, not its total: the total also holds probe traffic, and a probe
        // landing before the last paid request's event can make the total match too early.
        const paid = (m: LoopMiner) =>
          Number(row(m)?.paidPromptTokens ?? 0) + Number(row(m)?.paidCompletionTokens ?? 0);
        return paid(miner("P")) === paidTokens && total(miner("S")) > 0 ? u : undefined;
      },
      { what: "both miners' user traffic in the ledger", timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(usage.freeTrafficCounted).to.equal(false);
    const s = usage.miners.find((x) => x.hotkey === miner("S").hotkey);
    const p = usage.miners.find((x) => x.hotkey === miner("P").hotkey);
    expect(Number(s?.paidPromptTokens) + Number(s?.paidCompletionTokens)).to.equal(0);
    expect(s?.businessPoints).to.equal(0);
    expect(Number(p?.paidPromptTokens) + Number(p?.paidCompletionTokens)).to.equal(paidTokens);
    expect(p?.businessPoints).to.be.greaterThan(0);

    // The validator scores the paying key's miner and gives the self-dealer no business.
    const row = (rows: PrintedScore[], m: LoopMiner) => rows.find((r) => r.hotkey === m.hotkey);
    const rows = await pollUntil(
      async () => {
        const t = lastPrintedTable(net.validator.stdout);
        return t !== undefined &&
          row(t, miner("P"))?.tokens === paidTokens &&
          row(t, miner("S")) !== undefined
          ? t
          : undefined;
      },
      { what: "a score table with P's paid tokens", timeoutMs: 20_000, intervalMs: 200 },
    );
    expect(row(rows, miner("S"))).to.include({ tokens: 0, business: 0 });
    expect(row(rows, miner("P"))?.business).to.equal(100);
    expect(row(rows, miner("P"))?.weight).to.be.greaterThan(row(rows, miner("S"))?.weight ?? 0);

    // The buyer paid exactly the sum of its requests' costs, each readable as a generation.
    const api = `http://127.0.0.1:${net.httpPort}/api/v1`;
    const auth = { authorization: `Bearer ${paidKey}` };
    let sum = 0;
    for (const b of bought) {
      const g = await pollUntil(
        async () => {
          const r = await fetch(`${api}/generation?id=${b.id}`, { headers: auth });
          return r.status === 200 ? ((await r.json()) as { data: Record<string, unknown> }).data : undefined;
        },
        { what: `generation ${b.id}`, timeoutMs: 10_000, intervalMs: 100 },
      );
      const cost = costMicros(b.prompt, b.completion, PRICE.prompt, PRICE.completion);
      expect(g).to.include({ model: "m-paid", tokens_prompt: b.prompt, tokens_completion: b.completion });
      expect(Math.round(Number(g.total_cost) * MICROS_PER_USD)).to.equal(cost);
      sum += cost;
    }
    const key = (
      (await (await fetch(`${api}/key`, { headers: auth })).json()) as { data: Record<string, unknown> }
    ).data;
    expect(Math.round(Number(key.usage) * MICROS_PER_USD)).to.equal(sum);
    expect(key.limit).to.equal(5);
    expect(Math.round(Number(key.limit_remaining) * MICROS_PER_USD)).to.equal(5 * MICROS_PER_USD - sum);
    // The self-dealer's free key shows its spend at list price, but nothing was paid for it.
    const free = await fetch(`${api}/key`, { headers: { authorization: `Bearer ${net.apiKey}` } });
    expect(((await free.json()) as { data: Record<string, unknown> }).data).to.include({
      is_free_tier: true,
      limit: null,
    });
  });
});
