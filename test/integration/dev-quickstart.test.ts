// What the README's quick start promises, run for real: `tensorclaw dev`
// brings up a router, two miners and a dry-run validator in one process
// tree, prints a banner whose URL and key work with the official openai
// client, shows the score table, and stops cleanly on Ctrl-C (SIGINT).
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import OpenAI from "openai";
import { DEMO_EMBEDDING_MODEL_ID, DEMO_MODEL_ID } from "../../miner/backend/demo.js";
import { runCli } from "../support/cli.js";
import { descendantPids, ProcessSet, pidAlive } from "../support/loop-process.js";
import { lastPrintedTable } from "../support/loop-score-table.js";
import { pollUntil } from "../support/poll.js";

describe("tensorclaw dev (quick start)", function () {
  this.timeout(90_000);
  const procs = new ProcessSet();
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-dev-"));
  });
  afterEach(async () => {
    await procs.killAll();
    await rm(dir, { recursive: true, force: true });
  });

  it("prints a banner that works with the openai client, shows scores, and exits 0 on SIGINT leaving no child", async () => {
    const dev = procs.spawn(
      "dev",
      [
        "dev",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--data-dir",
        dir,
        "--miners",
        "2",
        "--probe-interval-s",
        "2",
      ],
      { REDIS_URL: undefined },
    );
    const m = await dev.waitFor(
      /OpenAI API\s+(http:\/\/127\.0\.0\.1:\d+\/v1)\s+API key:\s+(\S+)/,
      60_000,
      "stdout",
    );
    const [, baseURL, apiKey] = m as unknown as [string, string, string];
    // The web console's address is printed beside the API's, and serves the page.
    const consoleUrl = /Web console\s+(http:\/\/127\.0\.0\.1:\d+\/)\s/.exec(dev.stdout)?.[1];
    expect(consoleUrl, "console URL in the banner").to.equal(baseURL.replace(/v1$/, ""));
    const page = await fetch(consoleUrl as string);
    expect(page.status).to.equal(200);
    expect(page.headers.get("content-type")).to.equal("text/html; charset=utf-8");

    const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 10_000 });
    const r = await client.chat.completions.create({
      model: DEMO_MODEL_ID,
      messages: [{ role: "user", content: "Hello!" }],
    });
    expect(r.choices[0]?.message.content ?? "").to.not.equal("");
    expect(r.usage?.completion_tokens ?? 0).to.be.greaterThan(0);

    // The demo miners embed too (tensorclaw-demo-embed), with the client's default base64.
    const e = await client.embeddings.create({
      model: DEMO_EMBEDDING_MODEL_ID,
      input: ["bread", "bread and salt"],
    });
    expect(e.data.map((d) => d.embedding.length)).to.deep.equal([256, 256]);
    expect(e.usage.prompt_tokens).to.be.greaterThan(0);
    // And legacy text completions, streamed.
    let completed = "";
    let completionTotal = 0;
    for await (const ev of await client.completions.create({
      model: DEMO_MODEL_ID,
      prompt: "Once upon a time",
      max_tokens: 5,
      stream: true,
      stream_options: { include_usage: true },
    })) {
      completed += ev.choices[0]?.text ?? "";
      completionTotal += ev.usage?.total_tokens ?? 0;
    }
    expect(completed).to.not.equal("");
    expect(completionTotal).to.be.greaterThan(0);

    const models = await client.models.list();
    const demo = models.data.find((x) => x.id === DEMO_MODEL_ID) as unknown as
      | { miners?: number }
      | undefined;
    expect(demo?.miners).to.equal(2);

    // The dry-run validator's table: both miners available and passing their probe (whichever of
    // their models it drew, the embedding one included), and the requests' tokens in it (the ledger
    // read through UsageReport).
    const table = await pollUntil(
      async () => {
        const rows = lastPrintedTable(dev.stdout) ?? [];
        const ok =
          rows.length === 2 &&
          rows.every((row) => row.avail === "yes" && row.probe === "pass") &&
          rows.reduce((n, row) => n + row.tokens, 0) ===
            (r.usage?.total_tokens ?? 0) + e.usage.prompt_tokens + completionTotal;
        return ok ? rows : undefined;
      },
      {
        what: "a score table with both miners passing and the request's tokens",
        timeoutMs: 30_000,
        intervalMs: 200,
      },
    );
    expect(table.map((row) => row.weight)).to.include(65535);
    // By default the validator plans on a simulated subnet with commit-reveal off: set_weights.
    await dev.waitFor(
      /weights: dry run, would set_weights\(netuid 92, uids \[1,2\] values \[\d+,\d+\], version_key 0\) as uid 0\n/,
      10_000,
      "stdout",
    );

    const children = descendantPids(dev.pid);
    // keys (one-shot, already gone), router, two miners, validator: at least the four long-lived ones.
    expect(children.length).to.be.at.least(4);
    dev.child.kill("SIGINT");
    expect(await dev.exited()).to.equal(0);
    expect(children.filter(pidAlive)).to.deep.equal([]);
  });

  describe("a busy fixed port", () => {
    let busy: Server;
    beforeEach(async () => {
      busy = createServer();
      await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    });
    afterEach(async () => {
      await new Promise<void>((resolve) => busy.close(() => resolve()));
    });

    it("makes `tensorclaw dev --http-port <busy>` exit non-zero naming --http-port", async () => {
      const address = busy.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      const r = await runCli(["dev", "--http-port", String(port), "--grpc-port", "0", "--data-dir", dir]);
      expect(r.code).to.not.equal(0);
      expect(r.stderr).to.match(new RegExp(`port ${port} is already in use.*--http-port`));
    });
  });
});
