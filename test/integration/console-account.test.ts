import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mnemonicGenerate } from "@polkadot/util-crypto";
import { expect } from "chai";
import { sendError } from "../../router/api/http.js";
import { ApiKeys, FileApiKeyStore } from "../../router/api/keys.js";
import { EmbeddedRateLimiter } from "../../router/api/rate-limiter.js";
import { DAY_MS, utcDay } from "../../router/billing/billing.js";
import { DepositAddresses } from "../../router/billing/deposits/address.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { activityDays } from "../../router/console/console-account.js";
import { consoleRoutes } from "../../router/console/console-routes.js";
import type { ActivityBody } from "../../router/console/console-types.js";

/**
 * `GET /api/v1/key/activity` behind the Account page, on real stores: the
 * calling key's own figures only, its request limit applies, and its deposit
 * address is the one the treasury derives for it.
 */
describe("console: a key's activity", function () {
  this.timeout(20_000);
  let dir: string;
  let server: Server | undefined;
  let billing: EmbeddedBilling | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "tc-console-account-"));
  });
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
    await billing?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it("fills 30 UTC days, oldest first, with the store's days", () => {
    const now = Date.UTC(2026, 2, 31, 15);
    const days = activityDays(
      [
        {
          dayStartMs: (utcDay(now) - 1) * DAY_MS,
          promptTokens: 3,
          completionTokens: 4,
          requests: 2,
          costMicros: 1500,
        },
      ],
      now,
    );
    expect(days).to.have.length(30);
    expect(days[0]?.date).to.equal("2026-03-02");
    expect(days.at(-1)).to.deep.equal({
      date: "2026-03-31",
      cost: 0,
      requests: 0,
      prompt_tokens: 0,
      completion_tokens: 0,
    });
    expect(days.at(-2)).to.deep.equal({
      date: "2026-03-30",
      cost: 0.0015,
      requests: 2,
      prompt_tokens: 3,
      completion_tokens: 4,
    });
  });

  it("answers the caller's key only, counts against its request limit, and names its deposit address", async () => {
    const now = Date.now();
    const keys = new ApiKeys(new FileApiKeyStore(join(dir, "keys.json")));
    const limited = await keys.create("limited", { requestsPerMinute: 1, tokensPerMinute: 0 }, now);
    billing = await EmbeddedBilling.open({
      bucketMs: 60_000,
      retentionMs: 86_400_000,
      path: join(dir, "billing.jsonl"),
      nowMs: now,
    });
    const mnemonic = mnemonicGenerate();
    const addresses = await DepositAddresses.fromMnemonic(mnemonic);
    const routes = consoleRoutes(() => new Promise(() => {}), undefined as never, {
      keys,
      limiter: new EmbeddedRateLimiter(),
      billing,
      clock: Date.now,
      depositAddress: async (id) => addresses.address(id),
    });
    server = createServer((req, res) => {
      routes(req, res, "req-1", (req.url ?? "/").split("?")[0] as string).then(
        (status) => {
          if (status === undefined) sendError(res, new Error("not the console's"), "req-1");
        },
        (err: unknown) => sendError(res, err, "req-1"),
      );
    });
    await new Promise<void>((r) => server?.listen(0, "127.0.0.1", () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/key/activity`;

    expect((await fetch(url)).status).to.equal(401);
    expect((await fetch(url, { headers: { authorization: "Bearer sk-not-a-key" } })).status).to.equal(401);
    const ok = await fetch(url, { headers: { authorization: `Bearer ${limited.key}` } });
    expect(ok.status).to.equal(200);
    expect(ok.headers.get("cache-control")).to.equal("no-store");
    const body = (await ok.json()) as ActivityBody;
    expect(body.data.days).to.have.length(30);
    expect(body.data.models).to.deep.equal([]);
    expect(body.data.deposit_address).to.equal(addresses.address(limited.record.id));
    // One request a minute: the second is refused like any other call of the key.
    const again = await fetch(url, { headers: { authorization: `Bearer ${limited.key}` } });
    expect(again.status).to.equal(429);
  });
});
