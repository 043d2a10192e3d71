// `tensorclaw keys` and the keys' billing, through real child processes:
// create --credits/--budget-daily, credit (audited, corrections, unknown ids),
// show and list, against a private Redis and against the embedded journal,
// each read back by the store a router would run (RedisBilling,
// EmbeddedBilling).
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect } from "chai";
import { Redis } from "ioredis";
import type { AccountView, BillingStore, CreditEntry } from "../../router/billing/billing.js";
import { EmbeddedBilling } from "../../router/billing/embedded.js";
import { RedisBilling } from "../../router/billing/redis.js";
import { DEFAULT_LEDGER_OPTIONS } from "../../router/ledger/ledger.js";
import type { UsageEvent } from "../../router/usage/event.js";
import { type CliResult, runCli } from "../support/cli.js";
import { pollUntil } from "../support/poll.js";
import { startRedis, type TestRedis } from "../support/redis.js";

/** Where one case's keys and billing live, for the CLI and for the router-side store. */
interface Place {
  /** Flags that point the CLI at it. */
  readonly flags: readonly string[];
  readonly env: Record<string, string>;
  /** The billing store a router on the same data would run. */
  readonly store: BillingStore;
  /** True when the CLI sees holds (Redis); the embedded router keeps them in its memory. */
  readonly holdsVisible: boolean;
  dispose(): Promise<void>;
}

interface Created {
  readonly key: string;
  readonly id: string;
  readonly account: { metered: boolean; balanceMicros: number; budgetDailyMicros: number | null } | null;
}

interface Shown {
  readonly id: string;
  readonly name: string;
  readonly limits: { requestsPerMinute: number; tokensPerMinute: number };
  readonly account: AccountView;
  readonly holdsVisible: boolean;
  readonly entries: CreditEntry[];
}

/** Waits for the router's store to see what the CLI wrote (the embedded one looks once a second). */
async function eventually(check: () => Promise<boolean>): Promise<void> {
  await pollUntil(check, { what: "the router's store to see the CLI's change", timeoutMs: 5000 });
}

function ok(r: CliResult): string {
  expect(r.code, r.stderr).to.equal(0);
  return r.stdout;
}

/** A final usage event of a request made with `keyId`, costing `costMicros`. */
function billed(
  keyId: string,
  requestId: string,
  model: string,
  costMicros: number,
  nowMs: number,
): UsageEvent {
  return {
    requestId,
    minerHotkey: "5Miner",
    model,
    promptTokens: 1000,
    completionTokens: 500,
    outcome: "completed",
    startedAtMs: nowMs - 200,
    finishedAtMs: nowMs,
    paid: true,
    billing: { keyId, costMicros, holdMicros: costMicros, ttftMs: 40, finishReason: "stop", streamed: false },
  };
}

function suite(name: string, open: () => Promise<Place>): void {
  describe(`keys CLI with billing: ${name}`, function () {
    this.timeout(60_000);
    let place: Place;
    const cli = (args: readonly string[]) => runCli(["keys", ...args, ...place.flags], place.env);
    const show = async (id: string): Promise<Shown> =>
      JSON.parse(ok(await cli(["show", id, "--json"]))) as Shown;

    beforeEach(async () => {
      place = await open();
    });
    afterEach(async () => {
      await place.dispose();
    });

    it("creates a metered key with credits and a daily budget the router's store sees, and an unmetered one without", async () => {
      const created = JSON.parse(
        ok(await cli(["create", "--name", "acme", "--credits", "10", "--budget-daily", "2.5", "--json"])),
      ) as Created;
      expect(created.key).to.match(/^tc-/);
      expect(created.account).to.deep.equal({
        metered: true,
        balanceMicros: 10_000_000,
        budgetDailyMicros: 2_500_000,
      });
      const nowMs = Date.now();
      // What the router reads when the key makes a request.
      await eventually(async () => (await place.store.settings(created.id))?.metered === true);
      expect(await place.store.settings(created.id)).to.deep.equal({
        metered: true,
        budgetDailyMicros: 2_500_000,
      });
      expect((await place.store.account(created.id, nowMs)).balanceMicros).to.equal(10_000_000);
      const [entry] = await place.store.entries(created.id, 10);
      expect(entry).to.include({
        keyId: created.id,
        amountMicros: 10_000_000,
        note: "initial credits",
        source: "operator",
      });
      // The budget binds before the balance: 2.5 USD a day of the 10.
      expect(
        await place.store.hold({
          keyId: created.id,
          requestId: "r1",
          amountMicros: 2_600_000,
          nowMs,
          ttlMs: 60_000,
        }),
      ).to.include({
        ok: false,
        reason: "budget",
      });

      const free = JSON.parse(ok(await cli(["create", "--name", "hobby", "--json"]))) as Created;
      expect(free.account).to.equal(null);
      expect(await place.store.settings(free.id)).to.equal(undefined);
      // --credits 0: metered, with nothing to spend until credited.
      const empty = JSON.parse(ok(await cli(["create", "--credits", "0", "--json"]))) as Created;
      expect(empty.account).to.deep.equal({ metered: true, balanceMicros: 0, budgetDailyMicros: null });
      await eventually(async () => (await place.store.settings(empty.id))?.metered === true);
      expect(await place.store.entries(empty.id, 10)).to.deep.equal([]);
    });

    it("refuses bad amounts and a budget without credits before storing anything", async () => {
      for (const args of [
        ["create", "--credits", "ten"],
        ["create", "--credits", "-1"],
        ["create", "--credits", "1.0000001"],
        ["create", "--budget-daily", "2"],
      ]) {
        const r = await cli(args);
        expect(r.code, args.join(" ")).to.equal(2);
        expect(r.stderr, args.join(" ")).to.match(/--credits|--budget-daily/);
      }
      expect(JSON.parse(ok(await cli(["list", "--json"])))).to.deep.equal([]);
    });

    it("credits a key with an audited entry, takes corrections, refuses unknown ids and malformed amounts", async () => {
      const { id } = JSON.parse(ok(await cli(["create", "--credits", "10", "--json"]))) as Created;
      const top = await cli(["credit", id, "5.25", "--note", "invoice 2024-117"]);
      expect(ok(top)).to.match(
        new RegExp(`credited ${id} \\+5\\.25 USD \\(entry op:\\d+:[0-9a-f]{16}\\); balance 15\\.25 USD`),
      );
      // A correction: a negative amount, its own entry; nothing is edited.
      expect(ok(await cli(["credit", id, "-0.25", "--note", "wrong invoice amount"]))).to.contain(
        "balance 15.00 USD",
      );
      // The router's store sees both entries and the balance (the embedded one within its refresh second).
      await eventually(async () => (await place.store.account(id, Date.now())).balanceMicros === 15_000_000);
      const entries = await place.store.entries(id, 10);
      expect(entries.map((e) => [e.amountMicros, e.note])).to.deep.equal([
        [-250_000, "wrong invoice amount"],
        [5_250_000, "invoice 2024-117"],
        [10_000_000, "initial credits"],
      ]);
      expect(new Set(entries.map((e) => e.id)).size).to.equal(3);

      const unknown = await cli(["credit", "key_0000000000000000", "5"]);
      expect(unknown.code).to.equal(1);
      expect(unknown.stderr).to.contain('no key with id "key_0000000000000000"');
      for (const bad of ["0", "abc", "1e3", "0.0000001"]) {
        expect((await cli(["credit", id, bad])).code, bad).to.equal(2);
      }
      expect((await cli(["credit", id])).code).to.equal(2);
      expect((await place.store.entries(id, 10)).length).to.equal(3);
      expect((await place.store.account(id, Date.now())).balanceMicros).to.equal(15_000_000);
    });

    it("meters an unmetered key on its first credit, and refuses to correct a key with no balance", async () => {
      const { id } = JSON.parse(ok(await cli(["create", "--json"]))) as Created;
      const refused = await cli(["credit", id, "-1"]);
      expect(refused.code).to.equal(1);
      expect(refused.stderr).to.contain("unmetered");
      expect(await place.store.settings(id)).to.equal(undefined);
      const topped = await cli(["credit", id, "3", "--json"]);
      expect(JSON.parse(ok(topped))).to.deep.include({ balanceMicros: 3_000_000 });
      expect(topped.stderr).to.contain("metered from now on");
      await eventually(async () => (await place.store.settings(id))?.metered === true);
      expect(await place.store.settings(id)).to.deep.equal({ metered: true, budgetDailyMicros: null });
    });

    it("shows limits, balance, holds, budget, spend today and per model, and the latest entries; list shows balance and spend", async () => {
      const created = JSON.parse(
        ok(
          await cli([
            "create",
            "--name",
            "shop",
            "--rpm",
            "7",
            "--tpm",
            "700",
            "--credits",
            "20",
            "--budget-daily",
            "5",
            "--json",
          ]),
        ),
      ) as Created;
      const id = created.id;
      ok(await cli(["credit", id, "1", "--note", "goodwill"]));
      const nowMs = Date.now();
      await eventually(async () => (await place.store.account(id, nowMs)).balanceMicros === 21_000_000);
      // Three requests the router settled, on two models, and one in flight.
      const settled = await place.store.settle(
        [
          billed(id, "req-1", "big", 1_234_567, nowMs),
          billed(id, "req-2", "big", 100_000, nowMs),
          billed(id, "req-3", "small", 7, nowMs),
        ],
        nowMs,
      );
      expect(settled.settled).to.equal(3);
      expect(
        await place.store.hold({ keyId: id, requestId: "req-4", amountMicros: 50_000, nowMs, ttlMs: 60_000 }),
      ).to.deep.equal({
        ok: true,
      });
      // The embedded store writes its journal on settle; the CLI reads it from the file.
      const s = await show(id);
      expect(s).to.deep.include({ id, name: "shop", limits: { requestsPerMinute: 7, tokensPerMinute: 700 } });
      expect(s.holdsVisible).to.equal(place.holdsVisible);
      expect(s.account).to.deep.include({
        settings: { metered: true, budgetDailyMicros: 5_000_000 },
        balanceMicros: 21_000_000 - 1_334_574,
        heldMicros: place.holdsVisible ? 50_000 : 0,
        creditedMicros: 21_000_000,
        spentTodayMicros: 1_334_574,
        spent30dMicros: 1_334_574,
      });
      expect(
        s.account.todayByModel.map((m) => [m.model, m.requests, m.promptTokens, m.costMicros]),
      ).to.deep.equal([
        ["big", 2, 2000, 1_334_567],
        ["small", 1, 1000, 7],
      ]);
      expect(s.entries.map((e) => e.note)).to.deep.equal(["goodwill", "initial credits"]);
      expect((await show(id)).entries).to.have.length(2);
      expect(
        (JSON.parse(ok(await cli(["show", id, "--json", "--entries", "1"]))) as Shown).entries.map(
          (e) => e.note,
        ),
      ).to.deep.equal(["goodwill"]);

      const text = ok(await cli(["show", id]));
      expect(text).to.match(/limits\s+7 requests\/min, 700 tokens\/min/);
      expect(text).to.match(/metered\s+yes/);
      expect(text).to.match(/balance\s+19\.665426 USD/);
      expect(text).to.match(place.holdsVisible ? /held\s+0\.05 USD/ : /held\s+- \(the embedded router/);
      expect(text).to.match(/budget\s+5\.00 USD per UTC day/);
      expect(text).to.match(/spent\s+today 1\.334574 USD, last 30 days 1\.334574 USD/);
      expect(text).to.match(/^\s+big\s+2000\s+1000\s+2\s+1\.334567$/m);
      expect(text).to.match(/^\s+small\s+1000\s+500\s+1\s+0\.000007$/m);
      expect(text).to.match(/\+1\.00 USD\s+operator\s+goodwill/);

      const free = JSON.parse(ok(await cli(["create", "--name", "hobby", "--json"]))) as Created;
      const rows = JSON.parse(ok(await cli(["list", "--json"]))) as {
        id: string;
        hash?: string;
        account: {
          metered: boolean;
          balanceMicros: number;
          spentTodayMicros: number;
          spent30dMicros: number;
        };
      }[];
      const by = new Map(rows.map((r) => [r.id, r]));
      expect(rows.every((r) => r.hash === undefined)).to.equal(true);
      expect(by.get(id)?.account).to.deep.include({
        metered: true,
        balanceMicros: 19_665_426,
        spentTodayMicros: 1_334_574,
        spent30dMicros: 1_334_574,
      });
      expect(by.get(free.id)?.account).to.deep.include({
        metered: false,
        balanceMicros: 0,
        spentTodayMicros: 0,
      });
      const listed = ok(await cli(["list"]));
      expect(listed).to.match(
        new RegExp(`${id} .* shop .* balance=19\\.665426 USD  today=1\\.334574 USD  30d=1\\.334574 USD`),
      );
      expect(listed).to.match(new RegExp(`${free.id} .* hobby .* balance=unmetered  today=0\\.00 USD`));

      const missing = await cli(["show", "key_ffffffffffffffff"]);
      expect(missing.code).to.equal(1);
      expect(missing.stderr).to.contain("no key with id");
    });
  });
}

describe("keys CLI and billing (child processes)", () => {
  let redis: TestRedis;
  let root: string;
  let n = 0;

  before(async () => {
    redis = await startRedis();
    root = await mkdtemp(join(tmpdir(), "tc-keys-billing-"));
  });
  after(async () => {
    await redis.stop();
    await rm(root, { recursive: true, force: true });
  });

  suite("embedded (billing.jsonl beside the key file)", async () => {
    const dir = join(root, `d${n++}`);
    await mkdir(dir, { recursive: true });
    // The router's store, open on the same journal while the CLI writes to it.
    const store = await EmbeddedBilling.open({
      ...DEFAULT_LEDGER_OPTIONS,
      path: join(dir, "billing.jsonl"),
      nowMs: Date.now(),
    });
    return { flags: ["--data-dir", dir], env: {}, store, holdsVisible: false, dispose: () => store.close() };
  });

  let db = 0;
  suite("redis", async () => {
    // The CLI uses the router's default key prefix, so each case gets a database of its own on
    // this file's private Redis instead of a random prefix.
    if (db > 15) throw new Error("more Redis cases than databases");
    const url = `${redis.url}/${db++}`;
    const client = new Redis(url);
    const store = new RedisBilling(client, DEFAULT_LEDGER_OPTIONS);
    return {
      flags: [],
      env: { REDIS_URL: url },
      store,
      holdsVisible: true,
      dispose: async () => {
        await client.quit();
      },
    };
  });

  it("revokes a key whose account cannot be opened, so it never serves unmetered", async () => {
    const dir = join(root, "broken");
    // billing.jsonl is a folder: the journal cannot be written.
    await mkdir(join(dir, "billing.jsonl"), { recursive: true });
    const r = await runCli(["keys", "create", "--credits", "5", "--data-dir", dir, "--json"]);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/could not be opened, so the key was revoked/);
    await rm(join(dir, "billing.jsonl"), { recursive: true });
    const rows = JSON.parse(ok(await runCli(["keys", "list", "--json", "--data-dir", dir]))) as {
      revokedAtMs: number | null;
    }[];
    expect(rows).to.have.length(1);
    expect(rows[0]?.revokedAtMs).to.be.a("number");
    // Nor was the key ever shown.
    expect(r.stdout).to.equal("");
  });
});
